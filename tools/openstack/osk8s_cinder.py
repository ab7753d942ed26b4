"""Cinder's own fake volume driver, minus the one step that needs a real block device.

`cinder.tests.fake_driver.FakeLoggingVolumeDriver` keeps volumes in a fake LVM, but writing an
image into a new volume (a boot from image to volume) is inherited from the real LVM driver:
it converts the image onto /dev/<vg>/<volume>, which does not exist here. A volume made from
an image therefore copies nothing; everything Nova and Cinder record (the volume, its image
metadata, bootable, the attachment) is real.
"""

from cinder.tests.fake_driver import FakeLoggingVolumeDriver


class FakeVolumeDriver(FakeLoggingVolumeDriver):
    def copy_image_to_volume(self, context, volume, image_service, image_id, disable_sparse=False):
        return None

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        return None
