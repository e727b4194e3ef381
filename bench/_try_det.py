import logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from bench import detection
from bench.simproc import pin_to_cpu
from bench.common import markdown_table
pin_to_cpu(0)
print(markdown_table(detection.main_sync(detection.Settings(listings=10))))
