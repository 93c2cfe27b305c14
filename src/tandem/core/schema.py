"""JSON Schema for a Python function's parameters and result, through pydantic."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema

from tandem.core.errors import InvalidArguments


@dataclass(frozen=True, slots=True)
class Signature:
    """What the registry needs to know of a function: its arguments model and how to call it."""

    arguments: type[BaseModel]
    context_param: str | None
    """The name of the parameter that receives the call context, if the function takes one."""
    returns: Any
    """The return annotation, with ``inspect.Signature.empty`` when there is none."""
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    """The JSON Schema of the result when the function returns a pydantic model; computed once, read per call."""

    def bind(self, arguments: dict[str, Any] | None, label: str) -> dict[str, Any]:
        """Validate raw arguments; return the keyword arguments to call the function with."""
        try:
            model = self.arguments.model_validate(arguments or {})
        except ValidationError as exc:
            raise InvalidArguments(
                f"Invalid arguments for {label}: {describe_errors(exc)}", errors=_errors(exc)
            ) from None
        return dict(model)  # the fields by name (extra arguments are refused by the model, never passed on)


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the argument: what a model can act on."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _errors(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)
    ]


def signature_of(fn: Callable[..., Any], *, context_type: type | None = None) -> Signature:
    """Build the arguments model of ``fn``; a parameter annotated with ``context_type`` is injected, not exposed."""
    hints = typing.get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    context_param = None
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args and **kwargs cannot be described as a tool schema")
        annotation = hints.get(name, Any)
        if context_type is not None and _is_context(annotation, context_type):
            context_param = name
            continue
        if name.startswith("_"):
            raise TypeError(f"{fn.__qualname__}: parameter {name!r} starts with '_', which pydantic cannot expose")
        # A pydantic Field(...) default carries its description and constraints into the schema as it is.
        fields[name] = (annotation, ... if param.default is inspect.Parameter.empty else param.default)
    model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_arguments",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    returns = hints.get("return", inspect.Signature.empty)
    input_schema = model.model_json_schema(schema_generator=_UntitledFields)
    input_schema.pop("title", None)
    input_schema.setdefault("properties", {})
    output_schema = None
    if isinstance(returns, type) and issubclass(returns, BaseModel):
        output_schema = returns.model_json_schema(mode="serialization")
        output_schema.pop("title", None)
    return Signature(
        arguments=model,
        context_param=context_param,
        returns=returns,
        input_schema=input_schema,
        output_schema=output_schema,
    )


class _UntitledFields(GenerateJsonSchema):
    """Input schemas without the titles pydantic makes from field names ("limit" -> "Limit"): a model reads every
    tool's schema on every turn, and a title that repeats the name is tokens that say nothing. Titles given
    explicitly (``Field(title=...)``) stay."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _is_context(annotation: Any, context_type: type) -> bool:
    """``CallContext`` or ``CallContext | None``."""
    if annotation is context_type:
        return True
    args = typing.get_args(annotation)
    return bool(args) and context_type in args and all(a is context_type or a is type(None) for a in args)
