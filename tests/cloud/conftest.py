from cloud.fixtures import openstack_cloud  # noqa: F401
