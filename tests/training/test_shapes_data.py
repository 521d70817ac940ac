"""The procedural shapes data set: reproducible per seed, captions that match the picture."""

import numpy as np

from training.shapes_data import BACKGROUNDS, COLOURS, SHAPES, SIZE, make_dataset, make_example


def test_same_seed_same_example_and_different_seeds_differ():
    image_a, caption_a, labels_a = make_example(123)
    image_b, caption_b, labels_b = make_example(123)
    assert np.array_equal(image_a, image_b) and caption_a == caption_b and labels_a == labels_b
    images, _, _ = make_dataset(0, 8)
    assert len({im.tobytes() for im in images}) == 8


def test_pictures_are_64x64_rgb_with_the_shape_on_a_plain_background():
    for seed in range(50):
        image, _, labels = make_example(seed)
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        assert tuple(image[0, 0]) == BACKGROUNDS[labels.background]
        assert COLOURS[labels.colour] != BACKGROUNDS[labels.background]
        centre = image[int(labels.centre_y) + 2, int(labels.centre_x)].astype(int)
        assert np.abs(centre - np.array(COLOURS[labels.colour])).max() <= 12


def test_captions_name_what_is_drawn():
    seen = set()
    for seed in range(300):
        _, caption, labels = make_example(seed)
        words = caption.split()
        seen.add((labels.shape, labels.colour, labels.background))
        assert words[0] == "a"
        assert labels.colour in words and labels.shape in words
        assert sum(w in COLOURS for w in words) == 1 and sum(w in SHAPES for w in words) == 1
        if "background" in words:
            assert caption.endswith(f"on a {labels.background} background")
        if "small" in words or "large" in words:
            assert labels.size in words
    assert len(seen) > 40  # most of the 3 x 6 x 3 combinations occur
