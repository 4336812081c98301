"""``map`` and ``complete`` inside a real Jupyter kernel, whose event loop is already running."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

CELLS = [
    """
from valor_lib.clients import ChatClient, register_toy_brain

class Shout:
    name = "shout"
    def __call__(self, request):
        return request.messages[-1].text.upper()

register_toy_brain("shout", Shout)
client = ChatClient("toy:shout")
""",
    """
import asyncio
assert asyncio.get_event_loop().is_running()  # the kernel's loop
results = client.map([f"item {i}" for i in range(20)], desc="shouting")
print([r.text for r in results][:2], client.complete("one").text, (await client.acomplete("two")).text)
""",
]


def test_map_complete_and_acomplete_in_a_kernel():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    stdout = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.output_type == "stream")
    assert "['ITEM 0', 'ITEM 1'] ONE TWO" in stdout
