"""Beyond first-order reverse mode: grad, hessian, jvp, gradcheck, gradgradcheck, detect_anomaly.

Nothing here adds a derivative rule. Higher derivatives run the op table's backward rules with
``GRAPH`` (sweep.py), a maths namespace whose operations build Values, so a gradient is a graph
that can be differentiated again. The modules, each building on the ones before:
  sweep.py     the reverse sweep, over floats or building graphs (GRAPH, GraphMath)
  anomaly.py   detect_anomaly(), attached through engine.watch()
  reverse.py   grad(), hessian()
  forward.py   jvp(), forward mode from the same rows
  checks.py    gradcheck(), gradgradcheck() against finite differences
"""

from __future__ import annotations

from .. import engine
from .anomaly import AnomalyError, detect_anomaly
from .checks import GradcheckError, gradcheck, gradgradcheck
from .forward import _node_tangent as _node_tangent  # explain(mode="forward") reads its terms
from .forward import jvp
from .reverse import grad, hessian
from .sweep import GRAPH, GraphMath, _backward_into_grads

__all__ = [
    "grad",
    "hessian",
    "jvp",
    "gradcheck",
    "gradgradcheck",
    "GradcheckError",
    "detect_anomaly",
    "AnomalyError",
    "GRAPH",
    "GraphMath",
]

engine._graph_backward = _backward_into_grads  # backward(create_graph=True)
