"""The compiled training and evaluation steps of :func:`vocalsep.train.train`, per Keras backend: tf.functions
on TensorFlow (the default), jit-compiled stateless calls on JAX (:func:`vocalsep.extras.keras_backend`)."""

from __future__ import annotations

from typing import Callable, NamedTuple

from .errors import VocalsepError


class Steps(NamedTuple):
    """What :func:`make_steps` returns: ``train`` and ``evaluate`` (see there), and ``sync()``, which puts
    the latest values into the model's and the optimizer's Keras variables.  Call it before anything reads
    those (``get_weights``, saving, a checkpoint, a Keras runner) and before anything writes them
    (``set_weights``, loading a checkpoint), or the next step would carry on from, and a later sync write
    over, the values it holds: on JAX the steps carry the values between them and write them back only at a
    sync; on TensorFlow the steps update the variables in place and ``sync`` does nothing."""

    train: Callable
    evaluate: Callable
    sync: Callable[[], None]


def make_steps(model, optimizer, batch_size: int, loss_fn=None) -> Steps:
    """:class:`Steps` (train, evaluate, sync).  ``train`` and ``evaluate`` are compiled functions
    (tf.functions, or :func:`_jax_steps` on JAX) of (mixture, vocals, accompaniment) batches, the network's
    input and its two targets ((batch, freq_bins, frames, 1) magnitudes each for a spectral network; the
    network's output is cast to float32 for the loss, as a mixed-precision network's is bfloat16):
    ``train`` applies one optimizer step and returns the batch's mean of ``loss_fn`` (the front end's
    :meth:`~vocalsep.frontend.FrontEnd.training_loss`, (output, mixture, vocals, accompaniment) -> (batch,);
    default :func:`vocalsep.frontend.l1_loss` of the vocals); ``evaluate`` (inference mode) returns its sum
    over the batch."""
    import keras

    from .frontend import l1_loss

    loss_fn = loss_fn or (lambda out, mix, voc, acc: l1_loss(out, mix, voc))
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_steps(model, optimizer, loss_fn)
    if backend != "tensorflow":  # (Keras was imported under another KERAS_BACKEND)
        raise VocalsepError(f"train: Keras runs on {backend!r}, which vocalsep does not train on; "
                            "use tensorflow or jax (KERAS_BACKEND)")
    import tensorflow as tf

    spec = tf.TensorSpec((batch_size,) + tuple(model.input_shape[1:]), tf.float32)
    target = tf.TensorSpec((batch_size,) + tuple(model.output_shape[1:]), tf.float32)

    @tf.function(input_signature=[spec, target, target])
    def train_step(mix, voc, acc):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(tf.cast(model(mix, training=True), tf.float32), mix, voc, acc))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function(reduce_retracing=True)
    def eval_step(mix, voc, acc):
        return tf.reduce_sum(loss_fn(tf.cast(model(mix, training=False), tf.float32), mix, voc, acc))

    return Steps(train_step, eval_step, lambda: None)


def _jax_steps(model, optimizer, loss_fn):
    """:func:`make_steps` on Keras's JAX backend: the same loss and optimizer step, jit-compiled through the
    model's stateless call (Keras's guide to JAX training loops).  The values (the weights, the non-trainable
    state: batch-norm statistics and dropout's RNG, and the optimizer's variables) pass from one step to the
    next as JAX arrays, and ``evaluate`` reads them there; ``sync`` puts them back into the model's and
    optimizer's variables, so that checkpoints, a Keras runner and export read them as on TensorFlow.
    (Writing them back after every step cost a read and an assignment in Python per variable per step: 548
    variables for the attention U-Net.)"""
    import jax
    from keras import ops

    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    groups = (model.trainable_variables, model.non_trainable_variables, optimizer.variables)

    def loss_of(trainable, non_trainable, mix, voc, acc):
        out, non_trainable = model.stateless_call(trainable, non_trainable, mix, training=True)
        return ops.mean(loss_fn(ops.cast(out, "float32"), mix, voc, acc)), non_trainable

    grad = jax.value_and_grad(loss_of, has_aux=True)

    @jax.jit
    def step(trainable, non_trainable, opt, mix, voc, acc):
        (loss, non_trainable), grads = grad(trainable, non_trainable, mix, voc, acc)
        trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
        return loss, (trainable, non_trainable, opt)

    @jax.jit
    def evaluate(trainable, non_trainable, mix, voc, acc):
        out, _ = model.stateless_call(trainable, non_trainable, mix, training=False)
        return ops.sum(loss_fn(ops.cast(out, "float32"), mix, voc, acc))

    held: list = [None]  # the values the steps made since the last sync (None: the Keras variables hold them)

    def current():
        return held[0] if held[0] is not None else tuple([v.value for v in variables] for variables in groups)

    def train_step(mix, voc, acc):
        loss, held[0] = step(*current(), mix, voc, acc)
        return loss

    def eval_step(mix, voc, acc):
        trainable, non_trainable, _ = current()
        return evaluate(trainable, non_trainable, mix, voc, acc)

    def sync():
        if held[0] is not None:
            for variables, vals in zip(groups, held[0]):
                for v, x in zip(variables, vals):
                    v.assign(x)
            held[0] = None

    return Steps(train_step, eval_step, sync)
