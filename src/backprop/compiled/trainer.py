"""fit(compile=...)'s trainer: each batch size's loss graph traced once, then replayed."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..data import minibatches
from ..engine import Value
from ..nn import Module
from ..train.objectives import loss_of_outputs, make_batch_loss, model_outputs
from ..train.plan import TrainingPlan

__all__ = ["CompiledTrainer"]


class CompiledTrainer:
    """The batch loss traced once per batch size, then replayed every step.

    A batch size's graph is built by ``batch_loss`` over input Values and target Values (one
    row per sample: ``Objective.target_row``), then compiled with the optimizer's parameters
    and those Values named. A step hands the batch's numbers to the program as one array,
    replays forward and ``backward(accumulate=False)``, and steps the program's flat
    ``parameter_data`` with a FlatOptimizer (the optimizer's formulas over arrays). The
    parameters' numbers live in the program between ``sync()`` calls, which fit makes after
    every epoch (so that evaluation, snapshots and early stopping read current Values) and
    when it stops. A graph that some parameter or input does not reach is compiled as it
    is and replayed over the Values, with the per-Value ``opt.step()``.
    Tracing freezes what the model's Python decides from ``.data`` (see docs/compiled.md).
    """

    def __init__(self, model: Module, plan: TrainingPlan) -> None:
        import numpy as np

        from .flat_optim import FlatOptimizer

        optimizer, objective = plan.optimizer, plan.objective
        self.model, self.objective = model, objective
        self.batch_loss = make_batch_loss(objective, plan.l2)
        self.backend, self.optimizer, self.device = plan.compile, optimizer, plan.device
        self.batch_size = plan.batch_size
        self.parameters = optimizer.params
        self.X = np.asarray(plan.X_train, dtype=np.float64)
        rows = [objective.target_row(i, len(plan.classes)) for i in plan.y_train]
        self.T = np.asarray(rows, dtype=np.float64)
        # batch size -> (program, the Values a batch's numbers go to, parameters off its graph)
        self.programs: dict[int, tuple] = {}
        self.flat: FlatOptimizer | None = None
        if FlatOptimizer.supports(optimizer):
            self.flat = FlatOptimizer(optimizer)
        self.current = None  # the program holding the parameters' numbers, if any
        # the full batch's program also reports the outputs, so that evaluate() measures the
        # epoch from one replay
        self.l2, self.labels = plan.l2, plan.y_train
        self.rows = list(range(len(plan.X_train)))  # a step's batch is a list of row numbers
        self.order = random.Random(plan.seed)

    def epoch(self) -> None:
        """One epoch of steps, in the order eager training shuffles its rows."""
        batches = minibatches(self.rows, self.rows, self.batch_size, shuffle=True, seed=self.order)
        for batch, _ in batches:
            self.step(batch)
        self.sync()  # the Values hold the numbers for evaluation and snapshots

    def step(self, rows: Sequence[int]) -> None:
        """One optimizer step on the loss of these rows."""
        import numpy as np

        xb, tb = self.X[rows], self.T[rows]
        if len(rows) not in self.programs:
            self.sync()  # building a graph reads the parameters' Values
            self.programs[len(rows)] = self._build(xb, tb)
        program, slots, unused = self.programs[len(rows)]
        batch = np.concatenate([xb.ravel(), tb.ravel()])
        if slots is None:  # the flat path
            if self.current is not program:
                self.sync()  # the other batch size's program hands the numbers back
                self.current = program
            program.forward(inputs=batch)
            program.backward(accumulate=False)
            self.flat.step(program.parameter_data, program.parameter_grad)
            return
        self.finish()  # a per-Value step reads the Values and the optimizer's own state
        for v, x in zip(slots, batch.tolist()):
            v.data = x
        program.forward()
        program.backward(accumulate=False)  # sets the grads of every leaf of the graph
        for p in unused:  # parameters the loss does not reach: 0, as after zero_grad()
            p.grad = 0.0
        self.optimizer.step()

    def sync(self) -> None:
        """Write the parameters' numbers (data and the last grads) back to the Values."""
        if self.current is not None:
            self.current.sync()
            self.current = None

    def finish(self) -> None:
        """sync(), and the flat optimizer's state written into the optimizer's."""
        self.sync()
        if self.flat is not None:
            self.flat.write_state()

    def evaluate(self) -> tuple[float, float] | None:
        """(loss, accuracy) on all training rows, as _evaluate gives them, from one replay
        of the full batch's program (it reports the model's outputs); None without one."""
        import numpy as np

        entry = self.programs.get(len(self.X))
        if entry is None or entry[1] is not None or self.labels is None:
            return None
        program = entry[0]
        if not program.n_outputs:
            return None
        self.sync()
        loss = program.forward(inputs=np.concatenate([self.X.ravel(), self.T.ravel()]))
        outs = program.output_data
        if self.objective.binary:
            predicted = (outs > 0).astype(np.intp)
        else:  # the first of equal scores, as max() in Objective.predict
            predicted = outs.reshape(len(self.X), -1).argmax(axis=1)
        return loss, float(np.mean(predicted == np.asarray(self.labels)))

    def _build(self, xb, tb) -> tuple:
        from . import LeafMismatchError
        from . import compile as compile_graph

        xs = [[Value(x) for x in row] for row in xb.tolist()]
        ts = [[Value(t) for t in row] for row in tb.tolist()]
        targets = [row[0] for row in ts] if self.objective.binary else ts
        reported = []  # the full batch's program reports the outputs, for evaluate()
        if len(xs) == len(self.X) and self.backend != "torch":
            outputs = model_outputs(self.model, xs)
            reported = [v for out in outputs for v in (out if isinstance(out, list) else [out])]
            loss = loss_of_outputs(self.objective, self.l2, self.model, outputs, targets)
        else:
            loss = self.batch_loss(self.model, xs, targets)
        slots = [v for row in xs for v in row] + [v for row in ts for v in row]
        options = {"backend": self.backend, "device": self.device}
        if self.flat is not None:
            try:
                program = compile_graph(
                    loss, inputs=slots, parameters=self.parameters, outputs=reported, **options
                )
                return program, None, []
            except LeafMismatchError:  # a parameter or input the loss does not reach
                self.finish()
                self.flat = None
        program = compile_graph(loss, **options)
        on_graph = {id(v) for v in program.leaves}
        unused = [p for p in self.parameters if id(p) not in on_graph]
        return program, slots, unused
