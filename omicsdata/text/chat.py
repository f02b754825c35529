"""Chat formatting: instruction/response records -> a list of ``{"role", "content"}`` messages."""
from __future__ import annotations

from typing import Mapping


def to_messages(instruction: str, response: str | None = None, *, system: str | None = None) -> list[dict]:
    """``[{"role": "system"?}, {"role": "user", ...}, {"role": "assistant", ...}?]``.

    The list is the format chat templates (``tokenizer.apply_chat_template``)
    and OpenAI-style APIs take. ``response=None`` leaves the assistant turn
    out (a prompt for generation).
    """
    msgs = []
    if system:
        msgs.append({"role": "system", "content": str(system)})
    msgs.append({"role": "user", "content": str(instruction)})
    if response is not None:
        msgs.append({"role": "assistant", "content": str(response)})
    return msgs


def record_to_messages(record: Mapping, *, instruction_key: str = "instruction", response_key: str = "response",
                       system: str | None = None, with_response: bool = True) -> list[dict]:
    """Messages of one record (a row of an instruction table)."""
    resp = record.get(response_key) if with_response else None
    return to_messages(record[instruction_key], resp, system=system)
