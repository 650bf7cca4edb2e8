"""Sharing a view in Chromium (issue 13): per tab, set two controls, copy the link, open it in a fresh
page and see the same values; hostile and malformed links; a link under a sub-path."""

import threading
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import free_port
from tests.e2e.conftest import open_tab

# tab id, title, then two controls: (selector inside the tab, value typed, query key)
VIEWS = [
    ("sde_ode", "SDE vs ODE", ("#sde-ode-n-samples input[type=number]", "500", "n_samples"),
     ("#sde-ode-n-steps input[type=number]", "80", "n_steps")),
    ("flows", "Flows", ("#flows-layers input[type=number]", "4", "n_layers"),
     ("#flows-steps input[type=number]", "500", "train_steps")),
    ("guidance", "Guidance", ("#guidance-prompt textarea", "a blue square", "prompt"),
     ("#guidance-n-steps input[type=number]", "12", "steps")),
    ("controlnet", "ControlNet", ("#controlnet-prompt textarea", "a green square", "prompt"),
     ("label:number input for Steps", "10", "steps")),
    ("attention", "Attention cache", ("#attention-seq-len input[type=number]", "8192", "seq_len"),
     ("label:number input for batch size B (batch_size)", "4", "batch_size")),
    ("detr", "DETR", ("#detr-threshold input[type=number]", "0.3", "threshold"),
     ("#detr-seed input", "7", "seed")),
    ("rnn_transformer", "RNN vs Transformer", ("#recall-seed input", "5", "seed"),
     ("#recall-distance input[type=number]", "30", "distance")),
    ("hallucination", "Hallucination", ("#hallucination-question textarea", "What pet does Kalo Renmis have?", "question"),
     ("label:seed", "3", "seed")),
    ("instruction_tuning", "Instruction tuning", ("#instruct-seed input", "3", "seed"),
     ("#instruct-ask-box textarea", "Sort the words: red cat", "instruction")),
    ("preferences", "RLHF vs DPO", ("#pref-beta input[type=number]", "1.5", "beta"),
     ("#pref-seed input", "4", "seed")),
]  # a new tab that returns its Binding: add two of its controls here


def control(page, tab_id: str, selector: str):
    """A control of the tab shown (a tab's content is in the page once it has been shown)."""
    if selector.startswith("label:"):
        return page.get_by_label(selector[len("label:"):], exact=True).locator("visible=true").first
    return page.locator(selector).locator("visible=true").first


def set_value(page, tab_id: str, selector: str, value: str) -> None:
    box = control(page, tab_id, selector)
    box.fill(value)
    box.press("Enter" if box.evaluate("e => e.tagName") == "INPUT" else "Tab")
    page.wait_for_timeout(300)


def location(page) -> str:
    return page.evaluate("window.location.href")  # replaceState: page.url lags behind it


def fresh_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("favicon.ico") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url, wait_until="load")
    page.wait_for_selector("button[role=tab]", timeout=30_000)
    return context, page, errors


@pytest.mark.parametrize("tab_id,title,first,second", VIEWS, ids=[v[0] for v in VIEWS])
def test_a_copied_link_opens_the_same_view(page, browser, tab_id, title, first, second):
    open_tab(page, title)
    assert f"tab={tab_id}" in location(page)  # choosing a tab is in the URL at once
    for selector, value, _ in (first, second):
        set_value(page, tab_id, selector, value)
    page.locator(f"#share-{tab_id}-copy").click()
    link_box = page.locator(f"#share-{tab_id}-link textarea, #share-{tab_id}-link input").first
    page.wait_for_function("e => e.value.includes('tab=')", arg=link_box.element_handle(), timeout=10_000, polling=250)
    link = link_box.input_value()
    assert link == location(page)
    for _, value, key in (first, second):
        assert f"{key}=" in link, link

    context, other, errors = fresh_page(browser, link)
    try:
        for selector, value, _ in (first, second):  # the link's tab is selected, its controls set
            # a hang guard only: the link's values are set by an event that takes no model slot (they once
            # waited behind other tests' runs past 60 s, when one model event set them and drew the view)
            expect(control(other, tab_id, selector)).to_have_value(value, timeout=180_000)
        if tab_id == "attention":  # the same view, not only the same controls
            other.wait_for_function("document.querySelector('#attention-summary').innerText.includes('8,192 × B = 4')",
                                    timeout=30_000, polling=250)
    finally:
        context.close()
    assert not errors, errors


HOSTILE = ("?tab=guidance&prompt=%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D1%22%3E"
           "&mode=%22%3E%3Cscript%3Ewindow.__pwned%3D2%3C%2Fscript%3E&steps=NaN&guidance_scale=1e400"
           "&seed=1&seed=2&%3Cb%3E=1&n_images=2&negative_prompt=" + "x" * 5000)


def test_a_hostile_link_is_text_and_warnings_and_the_rest_applies(browser, app_url):
    context, page, errors = fresh_page(browser, app_url + "/" + HOSTILE)
    try:
        toast = page.locator("[data-testid='toast-body']").filter(has_text="not applied")
        toast.first.wait_for(timeout=90_000)  # the page's first event; slow on a loaded machine
        text = toast.first.inner_text()
        expect(control(page, "guidance", "#guidance-n-images input[type=number]")).to_have_value("2", timeout=60_000)
        for reason in ("steps: must be a finite number", "guidance_scale: must be a finite number",
                       "seed was given 2 times", "mode: must be one of", "unknown setting", "prompt:"):
            assert reason in text, text
        assert control(page, "guidance", "#guidance-prompt textarea").input_value() == "a red circle"  # dropped
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("img[src='x']").count() == 0 and page.locator("[data-testid='toast-body'] img").count() == 0
    finally:
        context.close()
    assert not errors, errors


@pytest.mark.parametrize("query", ["?tab=nope", "?tab=", "?tab=guidance&tab=detr", "?%00=%ff&tab=%E2%80%AE",
                                   "?" + "&".join(f"k{i}=v" for i in range(300)), "?tab=detr&threshold=0x10"])
def test_a_malformed_link_opens_the_app(browser, app_url, query):
    context, page, errors = fresh_page(browser, app_url + "/" + query)
    try:
        page.wait_for_timeout(1500)
        assert page.get_by_role("tab", name="Home", exact=True).count() == 1
    finally:
        context.close()
    assert not errors, errors


def test_a_link_works_under_a_sub_path(browser):
    """The app mounted at /playground (as behind a proxy that keeps the prefix): the link carries the
    sub-path, and opening it there shows the view."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from playground.app import build_app

    demo = build_app(["attention"])
    app = gr.mount_gradio_app(FastAPI(), demo, path="/playground")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}/playground/"
    try:
        context, page, errors = fresh_page(browser, base + "?tab=attention&seq_len=4096&dtype=fp8")
        try:
            page.wait_for_function("document.querySelector('#attention-summary') && document.querySelector("
                                   "'#attention-summary').innerText.includes('T = 4,096')", timeout=60_000, polling=250)
            assert "at fp8" in page.locator("#attention-summary").inner_text()
            page.locator("#share-attention-copy").click()
            page.wait_for_timeout(500)
            link = page.locator("#share-attention-link textarea, #share-attention-link input").first.input_value()
            assert link.startswith(base + "?") and "seq_len=4096" in link and "dtype=fp8" in link
            page.locator("#share-attention-python").click()
            page.wait_for_function("document.querySelector('#share-attention-code').innerText.includes('/playground/')",
                                   timeout=30_000, polling=250)
        finally:
            context.close()
        assert not errors, errors
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_python_panel_s_snippet_gives_what_the_tab_shows(page, app_url):
    """Attention: the snippet read from the page, run against the app, gives the numbers the tab's
    summary shows for the same settings."""
    import re

    open_tab(page, "Attention cache")
    set_value(page, "attention", "#attention-seq-len input[type=number]", "8192")
    set_value(page, "attention", "label:number input for batch size B (batch_size)", "4")
    page.wait_for_function("document.querySelector('#attention-summary').innerText.includes('8,192 × B = 4')",
                           timeout=30_000, polling=250)
    page.locator("#share-attention-python").click()
    code = page.locator("#share-attention-code .cm-content")
    expect(code).to_contain_text("8192", timeout=30_000)
    snippet = "\n".join(line.inner_text() for line in code.locator(".cm-line").all())
    assert f"Client('{app_url}/')" in snippet and "api_name='/kv_cache'" in snippet, snippet
    namespace = {"print": lambda *a, **k: None}
    exec(compile(snippet, "snippet", "exec"), namespace)  # noqa: S102 - the app's own generated code
    result, summary = namespace["result"], page.locator("#attention-summary").inner_text()
    assert f"{result['elements_per_token']:,} elements per token" in summary
    assert f"{result['bytes_per_token']:,} bytes" in summary
    assert re.search(rf"→ {result['total_gb']:.3g} GB", summary), summary


def test_a_link_sets_and_shows_a_tab_s_second_binding(browser, app_url):
    """Guidance's section 'Inside the latent diffusion model' has its own fields (inside_...)."""
    context, page, errors = fresh_page(browser, app_url + "/?tab=guidance&inside_prompt=a+blue+square&inside_steps=5")
    try:
        expect(page.locator("#internals-prompt textarea")).to_have_value("a blue square", timeout=60_000)
        expect(page.locator("#internals-steps input")).to_have_value("5", timeout=30_000)
        expect(page.locator("#internals-status")).to_contain_text("“a blue square”, seed 0, 5 steps", timeout=120_000)
        assert "inside_prompt=a+blue+square" in location(page) and "inside_steps=5" in location(page)
    finally:
        context.close()
    assert not errors, errors


def test_a_hostile_text_that_is_a_valid_setting_stays_text(browser, app_url):
    """Hallucination takes any question: a link's markup is asked as text, shown as text, never run."""
    question = '<img src=x onerror="window.__pwned=1">Where was <b>Kalo</b> Renmis born?'
    from urllib.parse import quote

    context, page, errors = fresh_page(browser, app_url + "/?tab=hallucination&question=" + quote(question))
    try:
        expect(page.locator("#hallucination-question textarea")).to_have_value(question, timeout=60_000)
        expect(page.locator("#hallucination-answer")).not_to_be_empty(timeout=120_000)
        page.wait_for_timeout(1000)
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("img[src='x']").count() == 0
    finally:
        context.close()
    assert not errors, errors


def test_a_link_s_values_are_set_while_every_model_slot_is_busy(browser, app_url, monkeypatch):
    """A class opening one link at once: each page's values come from an event that takes no model
    slot, so they are set while other users' runs hold every slot (the view itself then waits)."""
    from gradio_client import Client

    from demos.guidance import sampler
    from playground import settings

    gate, entered, real = threading.Event(), threading.Semaphore(0), sampler.guided_eps

    def held(*args, **kwargs):  # a guidance step that waits for the gate: its run holds a model slot
        entered.release()
        gate.wait(timeout=300)
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler, "guided_eps", held)
    jobs = [Client(app_url, verbose=False).submit("a red circle", "cfg", 5.0, 1, 4, 1000 + i, api_name="/guidance")
            for i in range(settings.MODEL_CONCURRENCY_LIMIT)]
    context = None
    try:
        for _ in jobs:
            assert entered.acquire(timeout=120), "the guidance runs did not start"  # every slot is held now
        context, other, errors = fresh_page(browser, app_url + "/?tab=preferences&beta=1.5&seed=4")
        expect(control(other, "preferences", "#pref-beta input[type=number]")).to_have_value("1.5", timeout=60_000)
        expect(control(other, "preferences", "#pref-seed input")).to_have_value("4", timeout=10_000)
        assert not any(job.done() for job in jobs), "the runs let go of their slots: the test proves nothing"
    finally:
        gate.set()
        for job in jobs:
            job.result(timeout=120)
        if context is not None:
            context.close()
