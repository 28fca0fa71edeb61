"""Background jobs: the only place the GUI creates threads.

A job is a plain function ``fn(progress, should_stop) -> result`` (the engine's long-job convention)
run on a private ``QThreadPool``. Workers never touch widgets: they emit immutable values through the
:class:`Job`'s signals, which Qt queues to the GUI thread. One :class:`JobSlot` per purpose (load,
train, retrain...) holds at most one active job: starting a new one cancels the old one and
disconnects its signals first, so a late result of an aborted job can never reach the window.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from engine.errors import Cancelled

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals a second: the GUI thread stays free


class _CoreLimit:
    """BLAS/OpenMP thread limits are process-wide (threadpoolctl sets them in the loaded libraries, not
    per thread), so jobs that overlap share one limit: the first job to enter sets it and the last to
    leave restores the original. Each job entering and leaving ``threadpool_limits`` on its own would
    restore the full pools when the first of two overlapping jobs ended, under the second."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    @contextlib.contextmanager
    def __call__(self):
        import os

        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._users == 0:
                self._limiter = threadpool_limits(limits=max(1, (os.cpu_count() or 2) - 1))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._limiter.restore_original_limits()
                    self._limiter = None


#: Within a job: BLAS/OpenMP pools (numpy matmul and SVD, scikit-learn) use one core fewer than the
#: machine has. By default OpenBLAS runs a thread on every core; on a 2-core machine a 1M-row PCA score
#: then keeps both busy and the GUI thread waits 90-150 ms for a core (measured with a faulthandler
#: watchdog: the stalls sat in matmul/SVD, which release the GIL).
leave_a_core_for_the_gui = _CoreLimit()


@dataclass(frozen=True)
class Progress:
    fraction: float
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)
    # every (epoch, train_loss, val_loss) seen so far, so throttled updates lose no loss point
    loss_history: tuple[tuple[float, float, float | None], ...] = ()
    elapsed_s: float = 0.0

    @property
    def eta_s(self) -> float | None:
        if "eta_s" in self.metrics and self.metrics["eta_s"] is not None:
            return float(self.metrics["eta_s"])
        if 0.02 < self.fraction < 1.0:
            return self.elapsed_s * (1.0 - self.fraction) / self.fraction
        return None


@dataclass(frozen=True)
class JobError:
    exception: BaseException
    traceback: str


class Job(QObject):
    progressed = Signal(object)  # Progress
    succeeded = Signal(object)  # the function's return value
    failed = Signal(object)  # JobError
    cancelled = Signal()
    finished = Signal()  # always last

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._last_emit = 0.0
        self._train: dict[float, float] = {}
        self._val: dict[float, float] = {}
        self._started = time.perf_counter()
        self._delivered = False  # its outcome reached the GUI thread (set there, before the window's slots)

    # -- called from the worker thread ----------------------------------------------------------
    def should_stop(self) -> bool:
        return self._stop.is_set()

    def report(self, fraction: float, message: str = "", **metrics: Any) -> None:
        epoch = metrics.get("epoch")
        if epoch is not None:
            with self._lock:
                if metrics.get("train_loss") is not None:
                    self._train[float(epoch)] = float(metrics["train_loss"])
                if metrics.get("val_loss") is not None:
                    # mid-epoch reports carry the previous epoch's validation loss
                    at = float(epoch) - 1.0 if metrics.get("batch") is not None else float(epoch)
                    if at >= 1.0:
                        self._val[at] = float(metrics["val_loss"])
        now = time.perf_counter()
        if fraction < 1.0 and now - self._last_emit < PROGRESS_INTERVAL_S:
            return
        self._last_emit = now
        with self._lock:
            history = tuple((e, t, self._val.get(e)) for e, t in sorted(self._train.items()))
        self.progressed.emit(Progress(float(fraction), str(message), dict(metrics), history,
                                      now - self._started))

    # -- called from the GUI thread -------------------------------------------------------------
    def cancel(self) -> None:
        self._stop.set()

    @property
    def is_cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def _mark_delivered(self, *_args) -> None:
        self._delivered = True

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._done.wait(timeout_s)


class _Runnable(QRunnable):
    def __init__(self, job: Job, fn: Callable[[Callable, Callable], Any]):
        super().__init__()
        # Python owns the runnable (the job holds it until ``finished`` reaches the GUI thread):
        # with auto-delete, Qt frees the C++ object on the worker thread while the Python wrapper
        # may still sit in a reference cycle that the GUI thread's garbage collector frees later.
        self.setAutoDelete(False)
        self.job, self.fn = job, fn

    def run(self) -> None:
        job = self.job
        try:
            result = self.fn(job.report, job.should_stop)
        except Cancelled:
            job.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a dialog, never a crash
            if job.is_cancelled:
                job.cancelled.emit()
            else:
                job.failed.emit(JobError(exc, traceback.format_exc()))
        else:
            # an aborted job never delivers its result (napari 2796)
            if job.is_cancelled:
                job.cancelled.emit()
            else:
                job.succeeded.emit(result)
        finally:
            job._done.set()
            job.finished.emit()


class JobSlot(QObject):
    """At most one active job for one purpose."""

    busy_changed = Signal(bool)

    def __init__(self, name: str, pool: QThreadPool, parent: QObject | None = None):
        super().__init__(parent)
        self.name, self.pool = name, pool
        self.job: Job | None = None
        self._retired: list[Job] = []  # cancelled jobs still running: kept alive until they finish

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.is_done and not self.job._delivered

    def start(self, fn: Callable[[Callable, Callable], Any], *, on_progress: Callable | None = None,
              on_result: Callable | None = None, on_error: Callable | None = None,
              on_cancel: Callable | None = None, on_finish: Callable | None = None) -> Job:
        self.cancel()
        job = Job(self.name)
        job.connected = []  # the window-facing signals we connected: cut on cancel
        # connected first, so it runs before the window's slots: a window slot that asks ``busy``
        # while handling the result must not see the job as still running (the worker thread may
        # not have reached its ``finally`` yet under load)
        for signal in (job.succeeded, job.failed, job.cancelled):
            signal.connect(job._mark_delivered)
        for signal, slot in ((job.progressed, on_progress), (job.succeeded, on_result), (job.failed, on_error)):
            if slot:
                signal.connect(slot)
                job.connected.append(signal)
        if on_cancel:
            job.cancelled.connect(on_cancel)
        if on_finish:
            job.finished.connect(on_finish)
        job.finished.connect(lambda j=job: self._job_finished(j))
        self.job = job
        self.busy_changed.emit(True)
        job.runnable = _Runnable(job, fn)
        self.pool.start(job.runnable)
        return job

    def cancel(self) -> None:
        """Ask the active job to stop and cut it off from the window (it finishes on its own)."""
        job = self.job
        if job is None:
            return
        job.cancel()
        if not job.is_done:
            for sig in getattr(job, "connected", ()):
                with contextlib.suppress(RuntimeError, TypeError):
                    sig.disconnect()
            self._retired.append(job)
        self.job = None
        self.busy_changed.emit(False)

    def request_stop(self) -> None:
        """Cancel but keep listening: the job reports ``cancelled`` to the window when it stops."""
        if self.job is not None:
            self.job.cancel()

    def _job_finished(self, job: Job) -> None:
        job.runnable = None  # the worker is done with it: freed here, on the GUI thread
        if job in self._retired:
            self._retired.remove(job)
        if job is self.job:
            self.job = None
            self.busy_changed.emit(False)


class JobManager(QObject):
    """The window's jobs: one slot per purpose, one private thread pool, waited for on close."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 4):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.slots: dict[str, JobSlot] = {}

    def slot(self, name: str) -> JobSlot:
        if name not in self.slots:
            self.slots[name] = JobSlot(name, self.pool, self)
        return self.slots[name]

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        for slot in self.slots.values():
            slot.cancel()
        done = self.pool.waitForDone(timeout_ms)
        self.pool.clear()
        return done
