"""The alignment's dependency: the app's background worker that runs the alignment jobs."""

from typing import Annotated

from fastapi import Depends, Request

from clickme.alignment.jobs import AlignmentJobs


def get_alignment_jobs(request: Request) -> AlignmentJobs:
    return request.app.state.alignment_jobs


AlignmentWorker = Annotated[AlignmentJobs, Depends(get_alignment_jobs)]
