import logging, structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
from bench import book_open
from bench.simproc import pin_to_cpu
pin_to_cpu(0)
r = book_open.main_sync(book_open.Settings(listings=16))
from bench.common import markdown_table
print(markdown_table(r))
print(r.setup)
