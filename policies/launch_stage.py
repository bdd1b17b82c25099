"""Launch stage per client key. A key in `validation` is proving a new image
route: the launch rules allow it only the cheapest, smallest work (`quality: low`,
`n: 1`) until the operator promotes it to `production` in the config."""

from __future__ import annotations

from .base import PolicyRefused, Preflight, Rule, image_param

VALIDATION = "validation"


class LaunchStage(Rule):
    name = "launch_stage"

    def check(self, preflight: Preflight) -> None:
        image = preflight.call.image
        if preflight.caller.stage != VALIDATION or image is None:
            return
        problems = []
        if image.quality != "low":
            problems.append(("quality", f"`quality: low` (this request asks for {image.quality or 'auto'})"))
        if image.n != 1:
            problems.append(("n", f"`n: 1` (this request asks for {image.n})"))
        if not problems:
            return
        wanted = " and ".join(text for _, text in problems)
        raise PolicyRefused(
            self.name,
            f"Key '{preflight.caller.key_id}' is in the validation stage, which allows only {wanted}. "
            "Send a low-quality single image, or ask the operator to set `stage: production` on the key "
            "once the route has passed its launch check.",
            status=403,
            param=image_param(preflight.call, problems[0][0]),
        )
