"""A real OpenAI-compatible HTTP upstream for Tollgate's tests, demos and benchmarks.

It speaks the Images (generations, edits, streams), Responses (with the
image_generation tool), Chat Completions, Embeddings and Models APIs under
`/v1`, `/{upstream}/v1` and Azure's deployment paths, and injects faults on
request (see `markers`). It bills the images it makes at the official table's rates and
reports them as OpenAI's organization Costs and Usage (images) APIs do
(`organization_api`). `GET /_sim/requests` and `POST /_sim/reset` support tests.
"""

from .app import Simulator
from .server import create_app, run

__all__ = ["Simulator", "create_app", "run"]
