"""A link's view is in the page as served (issue 35, item 6): the config Gradio inlines holds the link's
tab and values, so the first render shows them; anything else is served as Gradio made it."""

import json
import re
import urllib.parse
import urllib.request

import pytest

from playground import lessons

CONFIG = re.compile(r"<script>window\.gradio_config = (.*?);</script>", re.DOTALL)


def page_config(app_url: str, query: str) -> dict:
    html = urllib.request.urlopen(f"{app_url}/?{query}", timeout=60).read().decode()
    return json.loads(CONFIG.search(html).group(1))


def by_elem_id(config: dict, elem_id: str) -> dict:
    return next(c for c in config["components"] if c["props"].get("elem_id") == elem_id)


def selected_tab(config: dict):
    return next(c for c in config["components"] if c["type"] == "tabs")["props"].get("selected")


def test_a_share_link_s_tab_and_values_are_in_the_served_page(app_url):
    plain = page_config(app_url, "")
    assert by_elem_id(plain, "attention-seq-len")["props"]["value"] != 8192
    config = page_config(app_url, "tab=attention&seq_len=8192")
    assert selected_tab(config) == "attention"
    assert by_elem_id(config, "attention-seq-len")["props"]["value"] == 8192
    # the page as served to anyone else is untouched
    assert by_elem_id(page_config(app_url, ""), "attention-seq-len")["props"]["value"] != 8192


def test_a_value_the_controls_would_refuse_is_left_at_its_default(app_url):
    default = by_elem_id(page_config(app_url, ""), "attention-seq-len")["props"]["value"]
    config = page_config(app_url, "tab=attention&seq_len=-5")
    assert by_elem_id(config, "attention-seq-len")["props"]["value"] == default


def test_a_hostile_text_stays_inert_text_in_the_page(app_url):
    """Hallucination takes any question: markup in it is a string inside the page's JSON, never markup."""
    hostile = "</script><script>window.__pwned=1</script>Where was <b>Kalo</b> Renmis born?"
    html = urllib.request.urlopen(f"{app_url}/?" + urllib.parse.urlencode({"tab": "hallucination", "question": hostile}),
                                  timeout=60).read().decode()
    assert hostile not in html and "<script>window.__pwned" not in html  # only its escaped form is there
    config = json.loads(CONFIG.search(html).group(1))
    assert by_elem_id(config, "hallucination-question")["props"]["value"] == hostile


def test_a_lesson_link_serves_its_step_s_view(app_url):
    default = by_elem_id(page_config(app_url, ""), "attention-seq-len")["props"]["value"]
    lesson = next(item for item in lessons.all_lessons() if item.id == "attention")
    k, step = next((k, s) for k, s in enumerate(lesson.steps, 1) if s.view.get("seq_len", default) != default)
    config = page_config(app_url, f"lesson=attention&step={k}")
    assert selected_tab(config) == "attention"
    assert by_elem_id(config, "attention-seq-len")["props"]["value"] == step.view["seq_len"]


@pytest.mark.parametrize("query", ["tab=nope", "tab=", "lesson=nope&step=1", "lesson=attention&step=99", "%00=%ff"])
def test_a_link_that_asks_for_nothing_here_gets_the_plain_page(app_url, query):
    config = page_config(app_url, query)
    assert selected_tab(config) is None
