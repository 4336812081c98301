"""``hf:<path>``: a tiny Qwen3 model with a locally trained tokenizer, built from a config (offline)."""

from __future__ import annotations

import pytest

from valor_lib.clients import ChatClient, ChatRequest, SamplingParams, user

# A Qwen3-style template: the "no thinking" switch adds an empty think block to the generation prompt.
TEMPLATE = (
    "{%- for m in messages -%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{%- endif -%}"
)
CORPUS = ["count the red chairs left of the table", "final_answer = len(boxes)", "depth(image, box) > 0.5",
          "<plan>find the cups</plan><answer>boxes = gd_detect(image, 'cup')</answer>"] * 20


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = TEMPLATE
    config = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-qwen3")
    Qwen3ForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def hf_client(tiny_qwen3):
    with ChatClient(f"hf:{tiny_qwen3}", device="cpu", batch_size=4) as client:
        yield client


def test_prompt_uses_the_chat_template_without_thinking(hf_client):
    prompt = hf_client.backend.render(ChatRequest.from_prompt("hello", system="be brief"))
    assert prompt == ("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n"
                      "<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_batched_greedy_generation_matches_one_by_one(hf_client):
    prompts = ["count chairs", "final_answer = len(boxes) for the red cups on the left", "depth"]
    requests = [ChatRequest.from_prompt(p, temperature=0.0, max_tokens=12) for p in prompts]
    batched = hf_client.map(requests, progress=False)
    single = [hf_client.backend.generate_batch([r])[0] for r in requests]
    assert [r.text for r in batched] == [s.text for s in single]
    assert all(r.text for r in batched)
    assert max(hf_client._batcher.batch_sizes) == 3  # left-padded into one batch
    for result in batched:
        assert result.ok and result.output_tokens <= 12 and result.input_tokens > 5


def test_max_tokens_and_stop_strings(hf_client):
    request = ChatRequest.from_prompt("count the cups", temperature=0.0, max_tokens=20)
    full = hf_client.complete(request)
    assert full.output_tokens <= 20
    text = full.text
    if len(text.strip()) < 4:
        pytest.skip("the random tiny model produced too little text to pick a stop string from")
    stop = text[len(text) // 2: len(text) // 2 + 2]
    cut = hf_client.complete(ChatRequest(request.messages, SamplingParams(temperature=0.0, max_tokens=20,
                                                                          stop=(stop,))))
    assert cut.text == text[: text.index(stop)] and cut.finish_reason == "stop"


def test_sampling_with_a_seed_is_reproducible(hf_client):
    request = ChatRequest.from_prompt("plan", temperature=1.0, top_k=50, max_tokens=10, seed=3)
    a = hf_client.complete(request.with_sample_index(0)).text
    b = hf_client.complete(request.with_sample_index(0)).text
    assert a == b


def test_images_are_refused_by_a_text_only_model(hf_client):
    from PIL import Image

    result = hf_client.complete(ChatRequest((user("what is this?", Image.new("RGB", (4, 4))),)))
    assert not result.ok and result.error_type == "bad_request"


def test_identity_changes_when_weights_change(tiny_qwen3, hf_client, tmp_path):
    import shutil

    from valor_lib.clients.backends.hf_backend import weights_fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(tiny_qwen3, copy)
    before = weights_fingerprint(str(copy))
    (copy / "model.safetensors").write_bytes((copy / "model.safetensors").read_bytes() + b" ")
    assert weights_fingerprint(str(copy)) != before
    assert hf_client.backend.identity()["weights"] == weights_fingerprint(tiny_qwen3)
