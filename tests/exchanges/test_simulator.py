"""The simulator's own machinery (not a venue's protocol): raw frame injection, ids across runs."""

from __future__ import annotations

import asyncio

import aiohttp

from exchanges.simulator import Simulator


async def _until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_inject_raw_sends_text_and_bytes_as_is_to_every_live_socket():
    async with asyncio.timeout(20), Simulator(exchanges=["hyperliquid"]) as sim:
        url = sim.endpoints("hyperliquid", "future").ws + "/ws"
        async with aiohttp.ClientSession() as http:
            first, second = await http.ws_connect(url), await http.ws_connect(url)
            await _until(lambda: len(sim.sessions("hyperliquid", "future")) == 2)
            truncated = '{"channel":"userFills","data":{"user":"0x12'
            assert await sim.inject_raw("hyperliquid", "future", truncated) == 2
            assert await sim.inject_raw("hyperliquid", "future", b"\x00\xffnot json") == 2
            for ws in (first, second):
                text = await ws.receive(timeout=5)
                assert (text.type, text.data) == (aiohttp.WSMsgType.TEXT, truncated)
                binary = await ws.receive(timeout=5)
                assert (binary.type, binary.data) == (aiohttp.WSMsgType.BINARY, b"\x00\xffnot json")
            await first.close()
            await _until(lambda: len(sim.sessions("hyperliquid", "future")) == 1)
            assert await sim.inject_raw("hyperliquid", "future", "{}") == 1
            assert (await second.receive(timeout=5)).data == "{}"
            await second.close()
