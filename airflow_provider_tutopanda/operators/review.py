"""Script review: a person approves, edits or rejects the script before any media is paid for.

:class:`ScriptReviewOperator` is the standard provider's human-in-the-loop operator
(``HITLOperator``): the run waits in Airflow's own "required actions" page, where the reviewer
sees the script and each segment's narration and image prompt as editable fields, and picks
``Approve`` or ``Reject``. An edit flows into the media jobs (their inputs change, so their
fingerprints do); a rejection fails the run before any media job starts (nothing is paid).

When the run's ``review`` param is off (the default), the task passes the script and the
prompts through at once without asking anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The longest narration or image prompt a reviewer may write (their edits are data).
MAX_EDIT_CHARS = 5000
APPROVE = "Approve"
REJECT = "Reject"


def _field(kind: str, index: int) -> str:
    return f"{kind}_{index + 1}"


#: Every ASCII punctuation character may be backslash-escaped in CommonMark.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~\"'&:=$%;,/?@^")


def escape_markdown(text: str) -> str:
    """Model-written text as literal markdown: one line, every punctuation mark escaped, so
    it cannot become a link, an image, a heading, HTML or anything but the words it is."""
    flat = " ".join(str(text).split())
    return "".join(f"\\{ch}" if ch in _MARKDOWN_SPECIAL else ch for ch in flat)


def _edit(edits: dict[str, Any], name: str) -> str | None:
    """A reviewer's edit of field ``name`` (untrusted data), or None if absent or empty.

    Longer than :data:`MAX_EDIT_CHARS` fails the task: the form refuses it, so only a
    request around the form gets here."""
    text = edits.get(name)
    if not isinstance(text, str) or not text.strip():
        return None
    if len(text) > MAX_EDIT_CHARS:
        raise AirflowFailException(
            f"the review's {name} is {len(text)} characters; at most {MAX_EDIT_CHARS}"
        )
    return text


class ScriptReviewOperator(HITLOperator):
    """Wait for a reviewer's verdict on the script and image prompts (when ``review`` is on).

    Args:
        script: The script task's record (``{"script": {title, segments}, ...}``).
        prompts: The ``image_prompt`` tasks' records (``[{"index", "prompt"}]``).

    Returns (``multiple_outputs``): ``script`` (the script record, narrations as approved),
    ``prompts`` (the prompt records as approved) and ``review`` (who decided, what changed).
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "script", "prompts")

    def __init__(self, *, script: Any, prompts: Any, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Review the script before the media are made")
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(options=[APPROVE, REJECT], multiple=False, **kwargs)
        self.script = script
        self.prompts = prompts

    # -- what the reviewer sees --------------------------------------------------------------

    def _prompts(self) -> list[dict[str, Any]]:
        return sorted((dict(p) for p in self.prompts or ()), key=lambda p: int(p["index"]))

    def _form(self) -> ParamsDict:
        segments = self.script["script"]["segments"]
        prompts = {int(p["index"]): p["prompt"] for p in self._prompts()}
        fields: dict[str, Param] = {}
        for index, segment in enumerate(segments):
            fields[_field("narration", index)] = Param(
                segment["narration"],
                type="string",
                minLength=1,
                maxLength=MAX_EDIT_CHARS,
                title=f"Segment {index + 1}: narration",
                description="What the narrator says (edit to change the speech).",
            )
            fields[_field("image_prompt", index)] = Param(
                prompts[index],
                type="string",
                minLength=1,
                maxLength=MAX_EDIT_CHARS,
                title=f"Segment {index + 1}: image prompt",
                description="What the image model is asked to draw.",
            )
        return ParamsDict(fields)

    def _body(self) -> str:
        script = self.script["script"]
        # The title and narrations were written by a model: shown as text, never as markup.
        lines = [f"## {escape_markdown(script['title'])}", ""]
        for index, segment in enumerate(script["segments"]):
            lines.append(f"{index + 1}. {escape_markdown(segment['narration'])}")
        lines += [
            "",
            "Edit any narration or image prompt below, then **Approve** to make the media, or "
            "**Reject** to end the run (nothing has been paid for media yet).",
        ]
        return "\n".join(lines)

    # -- running -----------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Pass through when ``review`` is off; else ask (the task awaits input)."""
        if not context["params"].get("review"):
            return self._outcome(edits={}, decided_by=None)
        self.params = self._form()
        self.body = self._body()
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The reviewer answered: fail the run on ``Reject``, else apply their edits."""
        answer = super().execute_complete(context, event)
        user = answer.get("responded_by_user") or {}
        who = user.get("name") or user.get("id") or "a reviewer"
        if answer["chosen_options"] != [APPROVE]:
            raise AirflowFailException(
                f"the script was rejected by {who}; no media job ran, nothing was paid"
            )
        return self._outcome(edits=dict(answer.get("params_input") or {}), decided_by=str(who))

    def _outcome(self, *, edits: dict[str, Any], decided_by: str | None) -> dict[str, Any]:
        record = dict(self.script)
        script = {**record["script"], "segments": [dict(s) for s in record["script"]["segments"]]}
        prompts = self._prompts()
        changed: list[str] = []
        for index, segment in enumerate(script["segments"]):
            text = _edit(edits, _field("narration", index))
            if text and text.strip() != segment["narration"]:
                segment["narration"] = text.strip()
                changed.append(f"narration[{index}]")
        for prompt in prompts:
            text = _edit(edits, _field("image_prompt", int(prompt["index"])))
            if text and text.strip() != prompt["prompt"]:
                prompt["prompt"] = text.strip()
                changed.append(f"image_prompt[{prompt['index']}]")
        if changed:
            self.log.info("tutopanda: the reviewer changed %s", ", ".join(changed))
        return {
            "script": {**record, "script": script},
            "prompts": prompts,
            "review": {"reviewed": decided_by is not None, "by": decided_by, "changed": changed},
        }
