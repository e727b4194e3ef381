import asyncio, httpx
from bench.daemonrig import listing, scenario_dict
from sniper.sim.scenarios import scenario_from_dict
from sniper.sim.server import SimServer
async def main():
    sc = scenario_from_dict(scenario_dict("x", [listing(f"N{i}X_USDT", appear_at_s=0.3+0.23*i, opens_after_s=600) for i in range(3)]))
    async with SimServer(sc) as s:
        async with httpx.AsyncClient() as c:
            for _ in range(10):
                r = await c.get(s.urls.rest + "/spot/currency_pairs")
                print([p["id"] for p in r.json()])
                await asyncio.sleep(0.1)
asyncio.run(main())
