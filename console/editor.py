"""The JSON policy editor's findings: the engine's validation, placed at their lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from policies import engine


@dataclass
class Line:
    number: int
    text: str
    findings: list[engine.Finding] = field(default_factory=list)


@dataclass
class Annotated:
    lines: list[Line]
    findings: list[engine.Finding]
    unplaced: list[engine.Finding]

    @property
    def has_errors(self) -> bool:
        return any(f.finding_type == "ERROR" for f in self.findings)


def annotate(
    text: str,
    policy_type: engine.PolicyType = engine.PolicyType.IDENTITY,
    max_size: int | None = None,
) -> Annotated:
    """Validate ``text`` and attach each finding to the line its span starts on."""
    try:
        findings = engine.validate(text, policy_type, max_size=max_size)
    except Exception as exc:  # the validator should not raise; if it does, say so and block
        findings = [
            engine.Finding(
                "ERROR", "VALIDATION_FAILED", f"The policy could not be checked: {exc}", (), None
            )
        ]
    lines = [Line(i + 1, t) for i, t in enumerate(text.splitlines() or [""])]
    unplaced: list[engine.Finding] = []
    for finding in findings:
        if finding.span is not None and 1 <= finding.span[0] <= len(lines):
            lines[finding.span[0] - 1].findings.append(finding)
        else:
            unplaced.append(finding)
    return Annotated(lines=lines, findings=findings, unplaced=unplaced)
