"""Cinder's own fake volume driver, minus the steps that need a real block device.

`cinder.tests.fake_driver.FakeLoggingVolumeDriver` keeps volumes in a fake LVM, but a volume
made from an image (Nova's boot from image to volume) would still be downloaded, inspected
with qemu-img under privsep and written onto /dev/<vg>/<volume>, none of which exists here.
This driver "clones" the image instead, as a storage backend that shares Glance's store
would: nothing is copied; everything Nova and Cinder record (the volume, its image metadata,
bootable, the attachment) is real.
"""

from cinder.tests.fake_driver import FakeLoggingVolumeDriver


class FakeVolumeDriver(FakeLoggingVolumeDriver):
    def clone_image(self, context, volume, image_location, image_meta, image_service):
        return None, True

    def copy_image_to_volume(self, context, volume, image_service, image_id, disable_sparse=False):
        return None

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        return None
