"""The project's browser client (``client/``), served by ``run.py`` at ``/client/``.

The page is Pipecat's JS client over SmallWebRTC with the soft-ack filter's
decision panel; it loads nothing from the internet. It is built at install time
(``setup.sh``: ``npm ci && npm run build`` in ``client/``) into ``client/dist``.
When it has not been built, the runner's prebuilt client is served instead.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

CLIENT_DIST = Path(__file__).resolve().parent.parent / "client" / "dist"


def mount_web_client(app, dist: Path = CLIENT_DIST) -> bool:
    """Serve ``dist`` at ``/client`` on Pipecat's runner ``app``.

    Call it before the runner configures its routes, so that this mount comes
    before (and wins over) the prebuilt client's.

    Returns:
        Whether the page was mounted (False when it has not been built).
    """
    if not (dist / "index.html").is_file():
        logger.warning(
            f"{dist} is not built (run ./setup.sh, or `npm ci && npm run build` in client/): "
            "serving Pipecat's prebuilt client, which needs the internet"
        )
        return False
    from fastapi.staticfiles import StaticFiles

    app.mount("/client", StaticFiles(directory=dist, html=True), name="softack-client")
    return True
