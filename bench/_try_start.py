import asyncio, time, tempfile, logging, structlog
from pathlib import Path
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from bench.daemonrig import listing, scenario_dict, scenario_file, start_daemon
from bench.simproc import ChildProcessSim, pin_to_cpu
from sniper.sim.server import generate_credentials
async def main():
    c = generate_credentials()
    with scenario_file(scenario_dict("x", [listing("AAA_USDT", appear_at_s=30, opens_after_s=1)])) as p, tempfile.TemporaryDirectory() as st:
        sim = await ChildProcessSim.start(str(p), c, 1, True)
        print("sim up", (time.monotonic_ns()-sim.clock_t0_ns)/1e9)
        t = time.monotonic_ns()
        r = await start_daemon(sim, c, Path(st), positions=3)
        print("daemon ready after", (time.monotonic_ns()-t)/1e9, "since sim clock", (time.monotonic_ns()-sim.clock_t0_ns)/1e9)
        await r.stop(); await sim.stop()
pin_to_cpu(0)
import uvloop; uvloop.run(main())
