"""What happens when in a video: its windows (timeline.windows), the segments found in
their scores (timeline.segments), its shot cuts (timeline.shots) and the values they
make, which the store keeps (timeline.values).

The package imports none of them: storage takes timeline.values, standard library only,
without the numpy, OpenCV and decoding the algorithms need.
"""
