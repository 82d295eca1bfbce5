"""Book tooling: find the text notebooks, execute them (stamped), build the HTML book, keep the checks' references.

* :mod:`.notebooks`: discovery and papermill parameters, a run's values checked once (``request``);
* :mod:`.execution`: one notebook executed with papermill, its outputs post-processed;
* :mod:`.outputs`: every folder a command writes checked before any work, results kept until
  replaced, ``pruneplast run``;
* :mod:`.stamps`: whether an executed page is up to date;
* :mod:`.book`: every page executed, staged and built with Jupyter Book;
* :mod:`.memory`: the kernel's peak memory per page;
* :mod:`.references`: the notebook checks' references;
* :mod:`.webassets`: the ipywidgets bundle served by the book; :mod:`.sphinxext`: the book's Sphinx hook;
* :mod:`.downloads`: each chapter's results files, linked from its last section;
* :mod:`.footer`: the version, commit and build date in every page's footer (a Sphinx extension);
* :mod:`.pdf`: the whole book as one PDF, printed by headless Chromium (and the print stylesheet).

None of it is part of a cached state's key or a page's stamp except :mod:`.execution`
(:mod:`pruneplast.keys`).
"""

from __future__ import annotations

from ._common import CELL_TIMEOUT, IOPUB_TIMEOUT, NOTEBOOK_DIRS, PACKAGE_DIR, ParameterError  # noqa: F401
from .book import (  # noqa: F401
    PageFailed,
    build_book,
    execute_book,
    jupyter_book_command,
    stage_book,
    toc_files,
    write_timings,
)
from .execution import execute  # noqa: F401
from .memory import PeakMemory  # noqa: F401
from .notebooks import (  # noqa: F401
    ParamInfo,
    Request,
    chapter_name,
    describe_parameters,
    find_notebook,
    is_text_notebook,
    overrides_of,
    parameter_info,
    parameters_for,
    parse_value,
    read_notebook,
    request,
    text_notebooks,
)
from .outputs import (  # noqa: F401
    OutputError,
    check_app_outputs,
    check_cache,
    check_file,
    check_port,
    check_run_outputs,
    check_writable,
    given_path,
    keep_results,
    replace_folder,
    run,
    run_lock,
    scratch_dir,
)
from .references import (  # noqa: F401
    REFERENCE_DIR,
    chapter_sources,
    check_against_reference,
    make_reference,
    read_reference,
    reference_path,
    reference_text,
)
from .stamps import stamp  # noqa: F401
