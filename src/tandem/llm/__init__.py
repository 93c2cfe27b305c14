"""Models Tandem can ask: the client's own through MCP sampling, and OpenAI-compatible endpoints (llama.cpp server,
Ollama, vLLM, hosted APIs) configured in ``[llm]``."""

from tandem.llm.ask import Reply, ask
from tandem.llm.openai_compatible import ChatClient, ChatMessage, Completion, LlmError

__all__ = ["ChatClient", "ChatMessage", "Completion", "LlmError", "Reply", "ask"]
