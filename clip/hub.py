"""Files of a Hugging Face hub repository, downloaded once into huggingface_hub's cache.

The cache is huggingface_hub's own (HF_HOME / HF_HUB_CACHE; HF_HUB_OFFLINE=1 reads it without
asking the hub), so files fetched for transformers or open_clip are reused.
"""


def hf_hub_download(repo_id, filename):
    """huggingface_hub.hf_hub_download, imported when a hub model is first named."""
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(
            f'Loading "{repo_id}" from the Hugging Face hub needs huggingface_hub: pip install huggingface_hub '
            "(or download the files yourself and name them with MODEL.BACKBONE.PATH)"
        ) from None
    return huggingface_hub.hf_hub_download(repo_id, filename)


def _fix(repo_id):
    return (
        f"Online, check the repository name; offline, download its files on a machine that is online "
        f"(huggingface-cli download {repo_id}, or the files of https://huggingface.co/{repo_id}) and name the "
        "folder with MODEL.BACKBONE.PATH."
    )


def hub_file(repo_id, filenames, what):
    """The local path of the first of ``filenames`` that ``repo_id`` holds; one clear error if none."""
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    not_cached = []
    for filename in filenames:
        try:
            return hf_hub_download(repo_id, filename)
        except LocalEntryNotFoundError:  # offline (or the hub is unreachable) and not in the cache
            not_cached.append(filename)
        except EntryNotFoundError:  # the repository has no such file: try the next name
            continue
        except OSError as e:  # no such repository, gated, no network, ...
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FileNotFoundError(
                f'Cannot fetch the {what} of "{repo_id}" from the Hugging Face hub ({reason}). {_fix(repo_id)}'
            ) from None
    names = " or ".join(filenames)
    if not_cached:
        raise FileNotFoundError(
            f'The {what} of "{repo_id}" ({names}) is not in the Hugging Face cache and the hub cannot be reached. '
            + _fix(repo_id)
        )
    raise FileNotFoundError(f'The Hugging Face repository "{repo_id}" has no {what} ({names}). {_fix(repo_id)}')


def optional_hub_file(repo_id, filename):
    """The local path of ``filename`` in ``repo_id``, or None when the repository has none."""
    try:
        return hub_file(repo_id, [filename], filename)
    except FileNotFoundError:
        return None
