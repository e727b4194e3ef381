import logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from bench import footprint
from bench.simproc import pin_to_cpu
from bench.common import markdown_table
pin_to_cpu(0)
r = footprint.main_sync(footprint.Settings(runs=1))
print(markdown_table(r)); print(r.setup)
