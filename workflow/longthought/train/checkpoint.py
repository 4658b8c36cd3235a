"""Checkpoints that survive a failed or preempted job, and resume from the latest one.

They live beside the model directory, in `<out>.ckpt/` (not a Snakemake output, so a failed job's
cleanup keeps them). Each `step-NNNNNNNN/` holds `accelerator.save_state` (model, optimizer, RNG
of every process; sharded under FSDP / DeepSpeed) plus `trainer_state.json` (stage, step in the
stage, global step, the log so far). A checkpoint is written under a `.tmp` name and renamed when
complete, so a job killed mid-save leaves the previous one as the latest. `fingerprint.json`
records what the run depends on; checkpoints of a different run are discarded, never resumed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from longthought.io import apply_umask, write_json

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Where training is: `stage_step` optimizer steps done in stage `stage`, and the log so far."""

    stage: int = 0
    stage_step: int = 0
    global_step: int = 0
    log: list[dict] = field(default_factory=list)



def fingerprint(parts: dict) -> str:
    """A stable hash of everything that makes two runs the same run."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Checkpoints:
    """The `<out>.ckpt/` directory of one training run."""

    def __init__(self, root: str | Path, run_fingerprint: str, keep: int = 2):
        self.root = Path(root)
        self.fingerprint = run_fingerprint
        self.keep = keep

    def prepare(self, is_main: bool) -> None:
        """Main process: discard checkpoints of another run; record this run's fingerprint."""
        if not is_main:
            return
        marker = self.root / "fingerprint.json"
        if marker.is_file():
            old = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
            if old != self.fingerprint:
                print(f"[train] {self.root}: checkpoints are from a different run "
                      "(spec, data or init changed); starting over", flush=True)
                shutil.rmtree(self.root)
        for stale in self.root.glob("step-*.tmp"):
            shutil.rmtree(stale)  # a save that never finished
        write_json(marker, {"fingerprint": self.fingerprint})

    def latest(self) -> Path | None:
        done = sorted(p for p in self.root.glob("step-*") if p.is_dir() and p.suffix != ".tmp"
                      and (p / STATE_FILE).is_file())
        return done[-1] if done else None

    def save(self, accelerator, state: TrainerState) -> Path:
        """Save the full training state at `state.global_step` (collective: every process calls)."""
        final = self.root / f"step-{state.global_step:08d}"
        tmp = final.with_suffix(".tmp")
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            write_json(tmp / STATE_FILE, asdict(state))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            apply_umask(tmp)  # accelerate/safetensors write private (0600) files
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            old = sorted(p for p in self.root.glob("step-*") if p.suffix != ".tmp")
            for p in old[: max(0, len(old) - self.keep)]:
                shutil.rmtree(p)
        accelerator.wait_for_everyone()
        return final

    def restore(self, accelerator) -> TrainerState | None:
        """Load the latest checkpoint into the prepared model/optimizer; None if there is none."""
        latest = self.latest()
        if latest is None:
            return None
        accelerator.load_state(str(latest))
        raw = json.loads((latest / STATE_FILE).read_text(encoding="utf-8"))
        return TrainerState(**raw)

    def remove(self, is_main: bool) -> None:
        if is_main and self.root.exists():
            shutil.rmtree(self.root)


class Preemption:
    """SIGTERM / SIGUSR1 (what SLURM sends before preempting, requeueing or hitting the time
    limit) -> finish the current step, checkpoint, exit; the re-run resumes from there.

    Every process checks the flag of all processes, so they all stop at the same step.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
    EXIT_CODE = 143  # 128 + SIGTERM: the job did not finish

    # Tests and drills: behave as if the signal came after this global step, in every process
    # (a launched multi-process run cannot be signalled at a chosen step from outside).
    AT_STEP_ENV = "LONGTHOUGHT_TRAIN_PREEMPT_AT_STEP"

    def __init__(self) -> None:
        import os

        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self.at_step = int(os.environ.get(self.AT_STEP_ENV) or 0)

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        self.received = signum

    def requested(self, accelerator, global_step: int = 0) -> bool:
        """True on every process as soon as any process got a signal (or `global_step` reached
        the drill's step, LONGTHOUGHT_TRAIN_PREEMPT_AT_STEP)."""
        if self.at_step and global_step >= self.at_step and self.received is None:
            self.received = signal.SIGTERM
        if accelerator.num_processes == 1:
            return self.received is not None
        import torch

        flag = torch.tensor(float(self.received is not None), device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
