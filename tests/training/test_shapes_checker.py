"""The checker reads held-out procedural pictures right (issue 7: at least 98%)."""

from PIL import Image

from training.shapes_checker import check_image
from training.shapes_data import make_example

# Seeds never used to calibrate the checker (1000..1599) nor to train the model (0..8191).
HELD_OUT = range(10_000_000, 10_000_400)


def test_checker_at_least_98_percent_on_held_out_pictures():
    right_shape = right_colour = 0
    for seed in HELD_OUT:
        image, _, labels = make_example(seed)
        result = check_image(image)
        right_shape += result.shape == labels.shape
        right_colour += result.colour == labels.colour
    assert right_shape / len(HELD_OUT) >= 0.98
    assert right_colour / len(HELD_OUT) >= 0.98


def test_checker_takes_pil_images_of_any_size():
    image, _, labels = make_example(10_000_500)
    big = Image.fromarray(image).resize((256, 256), Image.Resampling.NEAREST)
    result = check_image(big)
    assert (result.shape, result.colour) == (labels.shape, labels.colour)


def test_checker_finds_nothing_on_a_blank_picture():
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    assert check_image(blank).shape is None
