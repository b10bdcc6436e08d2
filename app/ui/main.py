"""ragent's Streamlit UI (``ragent ui``): chat with streamed answers, agent trace, clickable citations that open
the cited page with the passage highlighted, documents, memory and status pages. It talks to the REST API only.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import streamlit as st

from agents.events import ErrorEvent, Event, describe
from app.ui.client import ApiClient, ApiError
from app.ui.render import answer_markdown, highlight, numeric_rows
from core.settings import Settings

DPI = 110
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]



@st.cache_resource
def client() -> ApiClient:
    s = Settings.from_env(".env")
    return ApiClient(s.api_url, s.api_key)


def api() -> ApiClient:
    return client()


def sidebar_workspace() -> str:
    try:
        known = api().workspaces()
    except ApiError as e:
        st.sidebar.error(str(e))
        known = []
    default = st.session_state.get("workspace") or (known[0] if known else "default")
    options = sorted({*known, default})
    ws = st.sidebar.selectbox("Workspace", options, index=options.index(default), key="ws_select")
    new = st.sidebar.text_input("New workspace", key="ws_new", placeholder="name, then Enter")
    if new.strip():
        ws = new.strip()
    st.session_state["workspace"] = ws
    st.sidebar.caption(f"API: {api().base_url}")
    return str(ws)


# ---- chat ---------------------------------------------------------------------------------------------------
def show_trace(trace: list[Event], expanded: bool = False) -> None:
    if not trace:
        return
    with st.expander(f"Agent trace ({len(trace)} events)", expanded=expanded):
        for ev in trace:
            if (line := describe(ev)) is not None:
                st.text(line)


def show_citations(citations: list[dict[str, Any]], msg_no: int) -> None:
    if not citations:
        return
    cols = st.columns(min(len(citations), 4))
    for i, c in enumerate(citations):
        doc = str(c.get("doc", ""))
        label = f"[{c.get('n')}] {doc if len(doc) <= 32 else doc[:31] + '…'} p.{c.get('page') or '-'}"
        if cols[i % len(cols)].button(label, key=f"cite-{msg_no}-{i}", help=str(c.get("quote", ""))[:300]):
            st.session_state["viewer"] = c


def show_viewer(ws: str) -> None:
    c = st.session_state.get("viewer")
    if not c:
        return
    if not c.get("page") or not c.get("doc_id"):
        st.info(f"[{c.get('n')}] {c.get('doc')}: no page image (not a PDF). Quote: {c.get('quote')}")
        return
    try:
        png, scale = api().page_png(ws, c["doc_id"], int(c["page"]), DPI)
    except ApiError as e:
        st.warning(f"cannot show the cited page: {e}")
        return
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.markdown(f"**[{c.get('n')}] {c.get('doc')} — page {c.get('page')}**  \n> {c.get('quote', '')}")
        if close.button("Close", key="viewer-close"):
            st.session_state["viewer"] = None
            st.rerun()
        show_chunk_image(ws, c)
        st.image(highlight(png, c.get("bbox"), scale), caption=f"Page {c.get('page')} of {c.get('doc')}",
                 width=760)


def show_chunk_image(ws: str, hit: dict[str, Any], width: int = 420) -> None:
    """The image of an image hit or citation (figures, screenshots, scanned tables), above its text."""
    if not hit.get("image") or not hit.get("chunk_id"):
        return
    try:
        st.image(api().image_png(ws, str(hit["chunk_id"])), caption=f"Image on page {hit.get('page') or '-'}",
                 width=width)
    except ApiError as e:
        st.caption(f"(image not available: {e})")


def chat_page() -> None:
    ws = sidebar_workspace()
    st.title("Chat")
    st.session_state.setdefault("thread_id", uuid.uuid4().hex)
    messages: list[dict[str, Any]] = st.session_state.setdefault("messages", [])
    if st.sidebar.button("New conversation"):
        st.session_state.update(thread_id=uuid.uuid4().hex, messages=[], viewer=None)
        st.rerun()
    use_memory = st.sidebar.toggle("Use learned tips/shortcuts", value=True)
    for no, m in enumerate(messages):
        with st.chat_message(m["role"]):
            st.markdown(m["content"])
            for img in m.get("images", []):
                st.image(img, width=320)
            if m["role"] == "assistant":
                show_trace(m.get("trace", []))
                show_citations(m.get("citations", []), no)
    show_viewer(ws)
    prompt = st.chat_input(f"Ask about the documents in '{ws}' (attach a screenshot or photo with the clip)",
                           accept_file="multiple", file_type=IMAGE_TYPES)
    if not prompt:
        return
    shots = [f.getvalue() for f in prompt.files][:4]
    question = prompt.text.strip() or ("What does the attached image show?" if shots else "")
    if not question:
        return
    images = [f"data:{f.type or 'image/png'};base64,{base64.b64encode(b).decode()}"
              for f, b in zip(prompt.files, shots, strict=False)]
    messages.append({"role": "user", "content": question, "images": shots})
    with st.chat_message("user"):
        st.markdown(question)
        for img in shots:
            st.image(img, width=320)
    trace: list[Event] = []
    final: dict[str, Any] = {}
    with st.chat_message("assistant"):
        status = st.status("Thinking…", expanded=False)

        def tokens() -> Any:
            try:
                for ev in api().chat_stream(ws, question, st.session_state["thread_id"], use_memory, images):
                    if ev["type"] == "token":
                        yield ev["text"]
                    elif ev["type"] == "answer":
                        final.update(ev["answer"])
                    elif (line := describe(ev)) is not None:
                        trace.append(ev)
                        status.write(line)
            except ApiError as e:
                trace.append(ErrorEvent(type="error", message=str(e)))
                yield f"\n\nerror: {e}"

        streamed = st.write_stream(tokens())
        status.update(label=f"Done: {len(trace)} agent events", state="complete")
    answer = answer_markdown(final) or str(streamed or "")
    messages.append({"role": "assistant", "content": answer, "citations": final.get("citations", []),
                     "trace": trace})
    st.rerun()


# ---- search -------------------------------------------------------------------------------------------------
def search_page() -> None:
    ws = sidebar_workspace()
    st.title("Search")
    query = st.text_input("Search the documents", placeholder="words, a question, an error code…")
    if not query.strip():
        return
    try:
        hits = api().search(ws, query.strip(), k=10)
    except ApiError as e:
        st.error(str(e))
        return
    if not hits:
        st.info(f"Nothing found in '{ws}'.")
    for i, h in enumerate(hits, start=1):
        with st.container(border=True):
            ocr = f" · OCR {h['ocr_confidence']:.0%}" if h.get("ocr_confidence") is not None else ""
            st.markdown(f"**{i}. {h.get('doc')}** — page {h.get('page') or '-'} · {h.get('kind')}{ocr}")
            show_chunk_image(ws, h, width=360)
            st.text(str(h.get("text", ""))[:800])
            if h.get("page") and st.button("Open page", key=f"hit-{i}"):
                st.session_state["viewer"] = {"n": i, "doc": h.get("doc"), "doc_id": h.get("doc_id"),
                                              "page": h.get("page"), "bbox": h.get("bbox"), "quote": "",
                                              "chunk_id": h.get("chunk_id"), "image": h.get("image")}
    show_viewer(ws)


# ---- documents ----------------------------------------------------------------------------------------------
def documents_page() -> None:
    ws = sidebar_workspace()
    st.title("Documents")
    files = st.file_uploader("Upload PDF, Word (.docx), Markdown, HTML or text", accept_multiple_files=True,
                             type=["pdf", "docx", "md", "markdown", "html", "htm", "txt"])
    if files and st.button("Upload and ingest", type="primary"):
        try:
            job = api().upload(ws, [(f.name, f.getvalue(), f.type or "") for f in files])
        except ApiError as e:
            st.error(str(e))
            job = None
        if job:
            bar = st.progress(0.0, text="queued")
            while job["state"] in ("queued", "running"):
                time.sleep(0.5)
                job = api().job(job["id"])
                text = (f"graph stage (documents already searchable): {job['stage_done']}/{job['stage_total']} chunks"
                        if job.get("stage") == "graph" else
                        f"{job['state']}: {job['files_done']}/{len(job['files'])} files, {job['pages']} pages, "
                        f"{job['chunks']} chunks")
                bar.progress(min(1.0, float(job["progress"])), text=text)
            bar.progress(1.0, text=f"{job['state']}: {job['pages']} pages, {job['chunks']} chunks")
            for err in job["errors"]:
                st.error(f"{err['file']}: {err['error']}")
            if job["state"] == "done":
                st.success(f"Ingested {', '.join(job['files'])}")
    try:
        docs = api().documents(ws)
    except ApiError as e:
        st.error(str(e))
        return
    if not docs:
        st.info(f"No documents in '{ws}' yet.")
        return
    st.dataframe([{k: d[k] for k in ("title", "status", "pages", "chunks", "version", "doc_id", "error")}
                  for d in docs], width="stretch", hide_index=True)
    if any(d["status"] == "searchable" for d in docs):
        st.caption("searchable: found by search now; its graph stage (entities and relations for the graph path) "
                   "is still running.")
    by_label = {f"{d['title'] or d['source']} ({d['doc_id'][:8]})": d for d in docs}
    pick = st.selectbox("Document", list(by_label))
    if pick and st.button("Delete document", type="secondary"):
        try:
            api().delete_document(ws, by_label[pick]["doc_id"])
            st.success(f"Deleted {pick}")
            st.rerun()
        except ApiError as e:
            st.error(str(e))


# ---- memory -------------------------------------------------------------------------------------------------
def memory_page() -> None:
    ws = sidebar_workspace()
    st.title("Memory")
    kind = st.radio("Kind", ["tips", "shortcuts"], horizontal=True)
    try:
        items = api().memory(ws, kind)
    except ApiError as e:
        st.error(str(e))
        return
    with st.form("add-memory", clear_on_submit=True):
        text = st.text_area(f"New {kind[:-1]}")
        if st.form_submit_button("Add") and text.strip():
            try:  # a shortcut needs a name and steps: the API answers 422 for text alone
                api().add_memory(ws, kind, text.strip())
            except ApiError as e:
                st.error(str(e))
            else:
                st.rerun()
    if not items:
        st.info(f"No {kind} in '{ws}' yet: the agent learns them as it answers.")
    for it in items:
        title = str(it.get("name") or it.get("text", ""))[:80]
        with st.expander(f"{title} · weight {float(it.get('weight', 1)):.2f} · used {it.get('uses', 0)}×"):
            new = st.text_area("Text", value=str(it.get("text", "")), key=f"mem-{it['id']}")
            if it.get("steps"):
                st.json(it["steps"], expanded=False)
            save, delete = st.columns(2)
            if save.button("Save", key=f"save-{it['id']}"):
                api().edit_memory(ws, kind, it["id"], new)
                st.rerun()
            if delete.button("Delete", key=f"del-{it['id']}"):
                api().delete_memory(ws, kind, it["id"])
                st.rerun()


# ---- status -------------------------------------------------------------------------------------------------
def status_page() -> None:
    sidebar_workspace()
    st.title("Status")
    try:
        s = api().status()
    except ApiError as e:
        st.error(str(e))
        return
    llm = s["llm"]
    a, b, c, d = st.columns(4)
    a.metric("LLM server", "up" if llm.get("reachable") else "down")
    rate = llm.get("acceptance_rate")
    b.metric("Spec. acceptance rate", f"{rate:.0%}" if isinstance(rate, int | float) else "–")
    tps = llm.get("tokens_per_s")
    c.metric("Tokens/s (since last look)", f"{tps:.1f}" if isinstance(tps, int | float) else "–")
    mal = llm.get("mean_acceptance_length")
    d.metric("Mean acceptance length", f"{mal:.2f}" if isinstance(mal, int | float) else "–")
    if llm.get("error"):
        st.caption(f"{llm['base_url']}: {llm['error']}")
    st.subheader("Index")
    st.dataframe([{"workspace": ws, **v} for ws, v in s["index"].items()], hide_index=True, width="stretch")
    st.caption(f"engine: {s['engine']} · ingest jobs running: {s['jobs_active']} · auth: {s['auth']}")
    st.subheader("Latest benchmarks")
    try:
        results = api().bench()
    except ApiError as e:
        st.warning(str(e))
        results = []
    if not results:
        st.info("No bench/results/*.json yet: run a script under bench/.")
    for r in results[:3]:
        rows = numeric_rows(r["data"])
        st.markdown(f"**{r['name']}**")
        if not rows:
            st.json(r["data"], expanded=False)
            continue
        import pandas as pd

        df = pd.DataFrame(rows)
        nums = [col for col in df.columns if pd.api.types.is_numeric_dtype(df[col])]
        labels = [col for col in df.columns if col not in nums]
        if labels:
            df = df.set_index(labels[0])
        st.bar_chart(df[nums]) if nums else st.dataframe(df)


def main() -> None:
    st.set_page_config(page_title="ragent", page_icon=":material/menu_book:", layout="wide")
    nav = st.navigation([st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
                         st.Page(search_page, title="Search", icon=":material/search:"),
                         st.Page(documents_page, title="Documents", icon=":material/description:"),
                         st.Page(memory_page, title="Memory", icon=":material/psychology:"),
                         st.Page(status_page, title="Status", icon=":material/monitoring:")])
    nav.run()


main()
