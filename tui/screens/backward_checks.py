"""The Backward screen's checks: a cell against finite differences, and one AdamW step explained and applied."""

from __future__ import annotations

from ..backexplain import check_text
from ..backstages import fd_cell, weight_cell
from ..widgets.blockmap import BlockHeatmap
from ..workers import background


class GradientChecks:
    """Actions of the Backward screen that run the core's checks in workers; the screen provides the state
    (bt, params, stage, checks, update_shown, applied, _busy) and explain_cell/reload."""

    def _cursor(self) -> tuple[int, int]:
        return self.query_one("#grid", BlockHeatmap).real_cursor

    def action_check(self) -> None:
        """Check the selected cell against a float64 central difference of the loss (in a worker)."""
        cell = fd_cell(self.stage, *self._cursor(), self.app.session.head)
        if cell is None:
            self.notify("The loss itself has no gradient to check: press n for ∂L/∂logits.")
            return
        self.notify(f"Checking {cell[0]}{list(cell[1])} by finite differences…")
        self._busy += 1
        self._check(self.bt, *cell)

    @background("check", exclusive=False)
    def _check(self, bt, name: str, index: tuple) -> None:
        from tinylm.core import finite_difference

        try:
            result = finite_difference(self.app.session.model, bt, name, index)
        except Exception as exc:  # noqa: BLE001 - reported on screen, and the screen must not stay busy
            result = exc
        try:
            self.app.call_from_thread(self._checked, bt, result)
        except RuntimeError:
            pass

    def _checked(self, bt, result) -> None:
        self._busy -= 1
        if isinstance(result, Exception):
            self.notify(f"The check failed: {result}", severity="error")
            return
        if bt is not self.bt:
            return  # the weights moved on meanwhile
        self.checks[(result.name, result.index)] = result
        self.explain_cell(*self._cursor())
        self.notify(check_text(result))

    def action_update(self) -> None:
        """Explain one AdamW step of the selected weight, on this window (computed on copies)."""
        if self.update_shown is not None:
            self.update_shown = None
            self.explain_cell(*self._cursor())
            return
        target = weight_cell(self.bt, self.stage, *self._cursor(), "transformer.wpe.weight" in self.params)
        if target is None:
            self.notify("u works on a weight's gradient: the ∂L/∂W stages, the LM head and the wte/wpe rows.")
            return
        self.notify(f"Computing one AdamW step of {target[0]}{list(target[1])} on this window…")
        self._busy += 1
        self._explain_update(self.bt, *target)

    @background("update", exclusive=False)
    def _explain_update(self, bt, name: str, index: tuple) -> None:
        from tinylm.core import explain_adamw_step

        session = self.app.session
        try:
            update = explain_adamw_step(session.model, bt.ids, bt.targets, name, index, session.trainer)
        except Exception as exc:  # noqa: BLE001 - reported on screen, and the screen must not stay busy
            update = exc
        try:
            self.app.call_from_thread(self._updated, bt, update)
        except RuntimeError:
            pass

    def _updated(self, bt, update) -> None:
        self._busy -= 1
        if isinstance(update, Exception):
            self.notify(f"The step could not be computed: {update}", severity="error")
        elif bt is self.bt:
            self.update_shown = update
            self.explain_cell(*self._cursor())

    def action_apply(self) -> None:
        """Take the AdamW step on screen for real; the gradients are computed again for the new weights."""
        from tinylm.core import TinyLMError, apply_adamw_step

        update = self.update_shown
        if update is None:
            self.notify("Press u on a weight's gradient first to see the step.")
            return
        training = getattr(self.app, "training", None)
        if training is not None and training.alive:
            self.notify("Training is running: stop or finish it before stepping by hand.", severity="warning")
            return
        try:
            apply_adamw_step(self.app.session.model, update)
        except TinyLMError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.applied = update
        self.app.session.bump()
        self.notify(f"Applied: loss on this window {update.loss_before:.4f} → {update.loss_after:.4f}")
        self.reload()
