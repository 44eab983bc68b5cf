"""compute_accuracy, the "acc" meter of CoOp-family training logs."""


def compute_accuracy(output, target, topk=(1,)):
    """Top-k accuracies in percent, as a list of one-element tensors.

    output: [B, C] logits (or a tuple/list whose first item is the logits); target: [B].
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    res = []
    for k in topk:
        correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
        res.append(correct_k.mul_(100.0 / batch_size))
    return res
