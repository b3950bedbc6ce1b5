"""The offline ``tiny-qwen3`` model: the real Qwen tokenizer and chat template with a small,
briefly pre-trained Qwen3, built on first use (no network) and cached under ``.cache/``.

``tokenizer`` builds the tokenizer, ``corpus`` the pre-training chats, ``model`` the model,
``cache`` the build-once folders and ``build`` the two folders everything else loads.
"""
