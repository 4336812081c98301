"""The persistent response cache: reruns cost nothing, sampling keeps groups apart, switches, concurrency."""

from __future__ import annotations

import multiprocessing
import threading

from PIL import Image

from valor_lib.clients import ChatClient, ChatRequest, ResponseCache, user
from valor_lib.clients.cache import CachedAnswer


def test_rerun_is_answered_from_the_cache(backend, make_server, make_client):
    server = make_server()
    prompts = [f"q{i}" for i in range(10)]
    first = make_client(backend, server).map(prompts, progress=False)
    again_client = make_client(backend, server)  # a fresh client (a notebook rerun) on the same cache file
    again = again_client.map(prompts, progress=False)
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.cached for r in again) and not any(r.cached for r in first)
    assert len(server.received) == 10
    assert again_client.usage.as_dict()["api_calls"] == 10 and again_client.usage.as_dict()["cache_hits"] == 10
    assert (again[0].input_tokens, again[0].output_tokens) == (first[0].input_tokens, first[0].output_tokens)


def test_refresh_calls_again_and_overwrites(make_server, make_client):
    version = {"n": 1}
    server = make_server(lambda request: f"v{version['n']}")
    assert make_client("gemini", server).complete("q").text == "v1"
    version["n"] = 2
    assert make_client("gemini", server).complete("q").text == "v1"  # cached
    assert make_client("gemini", server, cache="refresh").complete("q").text == "v2"
    assert make_client("gemini", server).complete("q").text == "v2"
    assert len(server.received) == 2


def test_cache_off_writes_nothing(make_server, make_client, tmp_path):
    server = make_server()
    client = make_client("openai-chat", server, cache="off")
    client.complete("q")
    client.complete("q")
    assert client.cache is None and not (tmp_path / "cache.sqlite").exists()
    assert len(server.received) == 2


def test_sampling_groups_get_distinct_entries(backend, make_server, make_client):
    server = make_server()
    client = make_client(backend, server)
    group = [ChatRequest.from_prompt("same prompt", temperature=1.0)] * 5
    results = client.map(group, progress=False)
    assert len({r.key for r in results}) == 5 and len(client.cache) == 5
    assert len(server.received) == 5
    rerun = make_client(backend, server).map(group, progress=False)
    assert [r.key for r in rerun] == [r.key for r in results] and all(r.cached for r in rerun)
    explicit = client.map([group[0].with_sample_index(7)] * 2, progress=False)
    assert explicit[0].key == explicit[1].key  # an explicit index is taken as given
    assert len(server.received) == 6


def test_key_covers_backend_request_and_image_content(make_server, make_client):
    server = make_server()
    chat, responses = make_client("openai-chat", server), make_client("openai-responses", server)
    gemini = make_client("gemini", server)
    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    a = ChatRequest((user("what colour?", red),), )
    b = ChatRequest((user("what colour?", blue),), )
    assert chat.key_for(a) != chat.key_for(b)
    assert chat.key_for(a) == chat.key_for(ChatRequest((user("what colour?", red.copy()),)))
    assert len({chat.key_for(a), responses.key_for(a), gemini.key_for(a)}) == 3
    assert chat.key_for(ChatRequest.from_prompt("x", temperature=0.0)) != chat.key_for(
        ChatRequest.from_prompt("x", temperature=0.0, max_tokens=5))


def _write_entries(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        key = f"shared-{i}" if i % 2 else f"w{worker}-{i}"
        cache.put(key, "test:model", "{}", CachedAnswer(f"answer {key}", 1, 2, "stop"))
        assert cache.get(key) is not None


def test_concurrent_writers_in_processes_and_threads(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ResponseCache(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_entries, args=(path, w, 200)) for w in range(3)]
    threads = [threading.Thread(target=_write_entries, args=(path, 10 + w, 200)) for w in range(3)]
    for job in (*procs, *threads):
        job.start()
    for job in (*procs, *threads):
        job.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    cache = ResponseCache(path)
    assert len(cache) == 6 * 100 + 100  # each writer's own keys plus the shared ones once
    assert cache.get("shared-1").text == "answer shared-1"


def test_default_cache_location_is_under_data(monkeypatch, tmp_path):
    from valor_lib.clients import default_cache_path

    monkeypatch.delenv("VALOR_CLIENT_CACHE", raising=False)
    monkeypatch.setenv("VALOR_ROOT", str(tmp_path))
    assert default_cache_path() == tmp_path / "data" / "cache" / "clients" / "responses.sqlite"
    monkeypatch.setenv("VALOR_CLIENT_CACHE", str(tmp_path / "elsewhere.sqlite"))
    assert default_cache_path() == tmp_path / "elsewhere.sqlite"


def test_local_backends_default_to_no_cache():
    from valor_lib.clients import register_toy_brain, unregister_toy_brain

    register_toy_brain("cache_probe", lambda: (lambda request: "x"))
    try:
        assert ChatClient("toy:cache_probe").cache_mode == "off"
    finally:
        unregister_toy_brain("cache_probe")
