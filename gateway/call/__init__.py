"""The call chain: the layers one gateway call goes through, each handed its collaborators."""
