"""micrograd's Value as microgpt writes it (slots, children and their local gradients): the
anchor that bench_engine.py's W3 and bench_jit.py measure backprop against."""

import math


class SlotValue:
    """micrograd's Value as microgpt writes it: slots, children and their local gradients."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, SlotValue) else SlotValue(other)
        return SlotValue(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, SlotValue) else SlotValue(other)
        return SlotValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):
        return SlotValue(self.data**k, (self,), (k * self.data ** (k - 1),))

    def log(self):
        return SlotValue(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self):
        e = math.exp(self.data)
        return SlotValue(e, (self,), (e,))

    def relu(self):
        return SlotValue(max(0.0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1.0

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def __rtruediv__(self, other):
        return other * self**-1

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._children:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            for child, local in zip(v._children, v._local_grads):
                child.grad += local * v.grad
