"""Job statuses and their transitions.

    queued --claim--> running --complete--> done
                      running --retry-----> queued   (backoff; a lapsed lease is also re-claimed)
                      running --park------> parked   (max attempts reached; an operator looks)
    parked --requeue--> queued

Jobs are machinery, not records of care: the worker's transitions are kept on the row (attempts,
last_error, finished_at) rather than in the audit trail, which would otherwise drown in email sends. An
operator's requeue is a person's decision and goes through `change_status`, audited (`job.requeue`).
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    PARKED = "parked"


JOB_TRANSITIONS = TransitionTable(
    "job",
    {
        (JobStatus.QUEUED, JobStatus.RUNNING): "claim",
        (JobStatus.RUNNING, JobStatus.RUNNING): "reclaim_after_lease",
        (JobStatus.RUNNING, JobStatus.DONE): "complete",
        (JobStatus.RUNNING, JobStatus.QUEUED): "retry",
        (JobStatus.RUNNING, JobStatus.PARKED): "park",
        (JobStatus.PARKED, JobStatus.QUEUED): "requeue",
    },
)
