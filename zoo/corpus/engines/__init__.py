"""Where a corpus job runs: this machine's processes (``local``) or a Ray cluster (``ray``).

An engine gets a task (picklable: how to build the worker, and what one input's work is),
the inputs still to do, and a function to call with each finished record; it only
schedules. It never formats a result, and the job never knows which engine ran it.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.corpus.records import Record

#: Called by an engine, in the driver, with every finished record, in any order.
OnRecord = Callable[[Record], None]
