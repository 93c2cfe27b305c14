"""Settings of ``tandem.llm`` (the ``[llm]`` table): the OpenAI-compatible endpoint asked when the client cannot
sample. In the core so the one ``Settings`` object can hold them."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None,
        description="The OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1 (llama.cpp server), "
        "http://127.0.0.1:11434/v1 (Ollama), http://127.0.0.1:8000/v1 (vLLM); unset: no endpoint is asked.",
    )
    model: str | None = Field(None, description="The model name sent to the endpoint; needed with base_url.")
    api_key_env: str | None = Field(
        None,
        description="Name of the environment variable that holds the API key (sent as a Bearer token); it must end "
        "in API_KEY (OPENAI_API_KEY, TANDEM_LLM_API_KEY). The key itself is never a setting.",
    )
    timeout: float = Field(
        120.0, gt=0, description="Seconds the endpoint's whole answer may take, however slowly it arrives."
    )
    max_tokens: int = Field(1024, gt=0, le=200_000, description="Most tokens an answer may have (sampling too).")
    temperature: float | None = Field(0.2, ge=0, le=2, description="Sampling temperature; unset: the endpoint's.")
    sampling: bool = Field(True, description="Ask the client's own model first when it declares sampling.")
    sampling_timeout: float = Field(300.0, gt=0, description="Seconds to wait for the client's sampling answer.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8080/v1")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable (e.g. OPENAI_API_KEY), not the key itself")
        # The setting may come from a cloned repository's tandem.toml: it must not be able to send the user's
        # other secrets (GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, DATABASE_PASSWORD) to the endpoint it names.
        if not value.upper().endswith("API_KEY"):
            raise ValueError(
                "must name a variable ending in API_KEY (e.g. OPENAI_API_KEY, TANDEM_LLM_API_KEY): "
                "only an API key is ever sent to the endpoint; put the key in such a variable"
            )
        return value

    @model_validator(mode="after")
    def _model_with_url(self) -> LlmSettings:
        if self.base_url is not None and not (self.model or "").strip():
            raise ValueError(
                "llm.model must name the model the endpoint serves (e.g. 'qwen2.5-coder:7b' for Ollama; "
                "llama.cpp server accepts any name)"
            )
        return self
