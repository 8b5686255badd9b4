import numpy as np

from mmkeras.data import pipeline, tfrecord
from tests.data.conftest import make_config


def test_tfrecord_round_trip_gives_the_same_tensors_as_the_csv(digits_dir, tmp_path):
    config = make_config(digits_dir)
    p = pipeline.fit_preprocessor(config)
    paths = tfrecord.write_tfrecords(config, "train", str(tmp_path / "records"), num_shards=2)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    records = make_config(digits_dir, train=str(tmp_path / "records" / "train-*.tfrecord"))
    assert pipeline.num_examples(records, "train") == 6
    from_csv = list(pipeline.build_dataset(config, "train", p, training=False, batch_size=3))
    from_records = list(pipeline.build_dataset(records, "train", p, training=False, batch_size=3))
    assert len(from_csv) == len(from_records) == 2
    for (fa, la), (fb, lb) in zip(from_csv, from_records):
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
        for key in fa:
            np.testing.assert_array_equal(fa[key].numpy(), fb[key].numpy())
    # adapting on the records gives the same state
    q = pipeline.fit_preprocessor(records)
    assert q.get_config() == p.get_config()
