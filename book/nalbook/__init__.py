"""The book's phrasing, tables and figures, one module per kind of page.

Chapters only *read* run records through :mod:`nalkit.results`, which computes every number and verdict (by the
rules of :mod:`nalkit.results.criteria`); the modules here put those numbers into sentences, tables and figures and
draw with :mod:`nalkit.plotting`. Nothing here trains or decides. The results root defaults to
``<repo>/results`` and can be pointed elsewhere with the environment variable ``NALKIT_RESULTS`` (it must hold
``runs/``, and optionally ``benchmarks/``), e.g. to preview the book on another machine's records.

* :mod:`.common` -- where the records are, the settings in the book's order, numbers and numbered tables;
* :mod:`.intro` -- the claims table and the summary sentences;
* :mod:`.mechanism`, :mod:`.ranking`, :mod:`.horizon`, :mod:`.attention`, :mod:`.regime`, :mod:`.cost`,
  :mod:`.experiments` -- one per chapter or page.

Chapters write ``import nalbook as nb`` and call ``nb.<name>``: every public name of the modules is here.
"""

from .attention import *  # noqa: F403
from .common import *  # noqa: F403
from .common import _span  # noqa: F401  (the tests check it)
from .cost import *  # noqa: F403
from .experiments import *  # noqa: F403
from .horizon import *  # noqa: F403
from .intro import *  # noqa: F403
from .mechanism import *  # noqa: F403
from .ranking import *  # noqa: F403
from .regime import *  # noqa: F403
