"""Workers are described by their group: Textual would repr every argument on the UI thread otherwise."""

from __future__ import annotations

import numpy as np
from textual.app import App

from tinylm.tui.workers import background


class Heavy:
    """An argument whose repr is slow and would show in a worker's default description."""

    reprs = 0

    def __repr__(self) -> str:
        Heavy.reprs += 1
        return repr(np.zeros(10))


class Host(App):
    @background("job")
    def job(self, arg) -> int:
        return 7


async def test_a_background_worker_never_reprs_its_arguments():
    app = Host()
    async with app.run_test() as pilot:
        worker = app.job(Heavy())
        await worker.wait()
        await pilot.pause()
        assert Heavy.reprs == 0 and worker.description == "job" and worker.group == "job"
        assert worker.result == 7
