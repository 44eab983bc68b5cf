"""Command-line flags every test-time adaptation task shares (the reference's names and defaults):
the reward CLIPs and the momentum buffer. A task adds its own (data, candidates, steps)."""


def none_or_str(value):
    """A string flag that "None" / "none" / "" turns off."""
    return None if value in ("None", "none", "") else value


def add_reward_arguments(p):
    """The reward: one CLIP (--reward_arch) or several with weights (RLCF-S), CLIPScore's weight and
    the baseline processing of the K candidates' rewards."""
    p.add_argument("--reward_arch", default="ViT-L/14", help="reward CLIP: as -a")
    p.add_argument("--multiple_reward_models", type=int, default=0, help="1: RLCF-S, several reward CLIPs")
    p.add_argument("--reward_archs", nargs="+", default=None,
                   help="RLCF-S reward CLIPs (default ViT-L/14@336px RN50x64 ViT-L/14)")
    p.add_argument("--reward_weights", nargs="+", type=float, default=None,
                   help="RLCF-S weight per reward CLIP (default the reference's 10 : 3 : 5 by name)")
    p.add_argument("--weighted_scores", type=int, default=1, help="RLCF-S: 1 weighted sum, 0 mean of the scores")
    p.add_argument("--clipscore_weight", type=float, default=2.5)
    p.add_argument("--reward_process", type=int, default=1, help="1: subtract the mean reward (baseline)")
    p.add_argument("--reward_amplify", type=int, default=0, help="1: also divide by the rewards' std")


def add_momentum_arguments(p):
    """The momentum buffer (tta/core/episodic.py): the reset point moves towards the adapted weights."""
    p.add_argument("--momentum_update", type=int, default=0, help="1: the momentum buffer (tta/core/episodic.py)")
    p.add_argument("--update_freq", type=int, default=256, help="inputs between moves of the reset point")
    p.add_argument("--update_w", type=float, default=1.0)
    p.add_argument("--tta_momentum", type=float, default=0.9999)
