"""The distillation loss of PromptKD, which TextRefiner's PromptKD host also uses."""
import torch.nn.functional as F


def kd_loss(student_logits, teacher_logits, temperature=1.0):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), summed then divided by the logits'
    element count (a per-element mean, as the reference); logits [N, C]."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    teacher = F.softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_student, teacher, reduction="sum")
    return kl * temperature * temperature / student_logits.numel()
