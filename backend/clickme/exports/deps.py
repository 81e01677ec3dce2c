"""The exports' dependency: the app's background worker that writes the export jobs."""

from typing import Annotated

from fastapi import Depends, Request

from clickme.exports.jobs import ExportJobs


def get_export_jobs(request: Request) -> ExportJobs:
    return request.app.state.export_jobs


ExportWorker = Annotated[ExportJobs, Depends(get_export_jobs)]
