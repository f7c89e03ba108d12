"""Video decoding: a stream's frame index (decoding.index), the two decoders
(decoding.opencv, decoding.pyav), and the clips a caller asks for, read at once
(decoding.video) or streamed (decoding.stream).

The package imports none of them: a process takes only the modules it uses. None imports
torch: the network's tensor is model.transform's.
"""
