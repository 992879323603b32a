"""Save screenshots of the chat (a three-turn conversation), the source viewer and the timeline, at desktop and
phone width, into docs/.

    python scripts/screenshots.py                     # serves the index in QA_INDEX_DIR (default index/)
    python scripts/screenshots.py --url http://127.0.0.1:8000   # or shoots a server that is already running

Without an index it builds one of the bundled corpus in a temporary folder first (about a minute).
Needs Chromium (Debian: apt-get install chromium) and the playwright package.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import sync_playwright

PROJECT_DIR = Path(__file__).resolve().parent.parent
# A follow-up conversation: the third question's "dia" is the ambassador named in the first answer.
CONVERSATION = ("Siapa Duta Besar Rusia untuk Korea Utara?", "Apa harapannya untuk tahun 2024?",
                "Siapa menurut dia akan berkunjung ke Pyongyang?")
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextmanager
def local_server():
    import uvicorn

    from qa.api import create_app
    from qa.config import Settings
    from qa.indexer import build_index
    from qa.service import QAService

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        if QAService(settings).health()["status"] != "ok":
            print(f"no index in {settings.index_dir}; building one of {settings.corpus_dir} in a temporary folder")
            settings = Settings(corpus_dir=settings.corpus_dir, index_dir=Path(tmp) / "index")
            build_index(settings)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


def shoot(base_url: str, out: Path) -> list[Path]:
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=CHROMIUM_ARGS)
        for name, viewport in VIEWPORTS.items():
            context = browser.new_context(viewport=viewport, device_scale_factor=2 if name == "phone" else 1,
                                          color_scheme="light", reduced_motion="reduce")
            page = context.new_page()
            page.goto(base_url + "/")
            for n, question in enumerate(CONVERSATION, 1):
                page.get_by_label("Your question").fill(question)
                page.get_by_label("Your question").press("Enter")
                page.locator(f"#turn-{n} .reply:not(.pending)").wait_for()
            page.locator(f"#turn-{len(CONVERSATION)} .source-group summary").first.click()
            page.mouse.move(0, 0)  # no hover effect in the picture
            # The whole conversation in one picture: a window as tall as the page (a full-page shot would paint
            # the sticky question box over the last answer).
            page.set_viewport_size({**viewport, "height": page.evaluate("document.documentElement.scrollHeight")})
            saved.append(out / f"chat-{name}.png")
            page.screenshot(path=saved[-1], animations="disabled")
            page.set_viewport_size(viewport)
            page.locator(f"#turn-{len(CONVERSATION)} .group-passages a").first.click()
            page.locator("mark.passage#cited").wait_for()
            saved.append(out / f"source-{name}.png")
            page.screenshot(path=saved[-1], animations="disabled")
            page.goto(base_url + "/timeline")
            saved.append(out / f"timeline-{name}.png")
            page.screenshot(path=saved[-1], animations="disabled")
            context.close()
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server to shoot instead of starting one")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.url:
        saved = shoot(args.url.rstrip("/"), args.out)
    else:
        with local_server() as url:
            saved = shoot(url, args.out)
    for path in saved:
        print(path)


if __name__ == "__main__":
    main()
