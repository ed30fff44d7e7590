#!/bin/sh
# ctest image_build: deploy/build-image.sh --smoke, opt-in (it takes minutes
# and needs root and Debian's mirror).  Exit 77 (skipped) saying why.
repo=${1:?repo}
if [ "${STOKER_IMAGE_TEST:-0}" != 1 ]; then
	echo "image_build: skipped: set STOKER_IMAGE_TEST=1 to build the image and smoke-test it (minutes)"
	exit 77
fi
missing=
for t in mmdebstrap buildah podman; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
	echo "image_build: skipped: not installed:$missing (deploy/build-image.sh installs them as root)"
	exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "image_build: skipped: needs root"
	exit 77
fi
exec "$repo/deploy/build-image.sh" --smoke
