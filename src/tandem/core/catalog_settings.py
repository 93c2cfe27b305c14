"""Settings of the catalog toolset (the ``[catalog]`` table of ``tandem.toml``): where agent, skill and workflow
definitions are found, how long answers are cached, and how patterns learn. In the core so the one ``Settings``
object can hold them without the core importing a toolset."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CacheTtl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: float = Field(300.0, ge=0, description="Seconds an agent query's answer is reused.")
    skills: float = Field(300.0, ge=0, description="Seconds a skill query's answer is reused.")
    workflows: float = Field(300.0, ge=0, description="Seconds a workflow query's answer is reused.")
    patterns: float = Field(600.0, ge=0, description="Seconds a pattern query's answer is reused.")


class CatalogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[str] = Field(
        default_factory=lambda: ["plugins/*/agents/*.md", ".claude/agents/*.md", "~/.claude/agents/*.md"],
        description="Globs of agent definitions, relative to the workspace (or ~ for the home directory).",
    )
    skills: list[str] = Field(
        default_factory=lambda: [
            "plugins/*/skills/*/SKILL.md",
            "plugins/*/skills/*.md",
            ".claude/skills/*/SKILL.md",
            "~/.claude/skills/*/SKILL.md",
        ],
        description="Globs of skill definitions.",
    )
    workflows: list[str] = Field(
        default_factory=lambda: ["plugins/*/commands/*.md", ".claude/commands/*.md"],
        description="Globs of workflow (slash command) definitions.",
    )
    registry: str = Field(
        ".claude/agent-registry.yml", description="The role registry: roles.<role>: {primary, fallbacks, ...}."
    )
    cache_ttl: CacheTtl = Field(default_factory=CacheTtl, description="Answer cache lifetimes per namespace.")
    cache_max_entries: int = Field(2048, gt=0, description="Most answers cached (least recently used go first).")
    min_similarity: float = Field(0.7, ge=0, le=1, description="Least similarity for a stored pattern to match.")
    prune_below: float = Field(0.3, ge=0, le=1, description="Success rate under which a well-used pattern is pruned.")
    prune_after_uses: int = Field(5, ge=1, description="Uses before a pattern's success rate can prune it.")
    watch: bool = Field(True, description="Re-index when definition files change.")
    reindex_interval_s: float = Field(3600.0, ge=0, description="Seconds between periodic re-indexes; 0 never.")
    database: str = Field("catalog.db", description="The catalog's SQLite file, in the data directory.")
    backups: int = Field(3, ge=0, description="Database backups kept (one a day while running).")
    backup_interval_s: float = Field(86400.0, gt=0, description="Seconds between database backups.")
    max_database_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Size past which the oldest query-log rows are pruned."
    )
    log_queries: bool = Field(True, description="Keep a log of agent queries in the database.")
