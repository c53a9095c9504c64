# csi-scst: one image for every role (controller, node, target, standalone, client).
#   docker build -t csi-scst:0.1.0 .
# The build stage is Debian bookworm like the final image, so the Native AOT binary links against the
# same glibc it runs on; the .NET SDK (a portable build) is taken from Microsoft's SDK image.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS sdk

FROM debian:bookworm-slim AS build
# Native AOT links with the platform toolchain (clang) and needs zlib's headers; the SDK itself needs
# ca-certificates, OpenSSL and ICU to restore packages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates clang libicu72 libssl3 zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=sdk /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/local/bin/dotnet
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1 \
    DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
WORKDIR /src
# Restore first, from the project files only, so source edits do not invalidate the package layer.
COPY Directory.Build.props Directory.Packages.props ./
COPY proto/ proto/
COPY src/CsiScst/CsiScst.csproj src/CsiScst/
COPY src/CsiScst.Backends/CsiScst.Backends.csproj src/CsiScst.Backends/
COPY src/CsiScst.Core/CsiScst.Core.csproj src/CsiScst.Core/
COPY src/CsiScst.Csi/CsiScst.Csi.csproj src/CsiScst.Csi/
COPY src/CsiScst.Engine/CsiScst.Engine.csproj src/CsiScst.Engine/
COPY src/CsiScst.Initiator/CsiScst.Initiator.csproj src/CsiScst.Initiator/
COPY src/CsiScst.Protos/CsiScst.Protos.csproj src/CsiScst.Protos/
COPY src/CsiScst.Targets/CsiScst.Targets.csproj src/CsiScst.Targets/
RUN dotnet restore src/CsiScst -r linux-x64 -p:PublishAot=true
COPY src/ src/
RUN dotnet publish src/CsiScst -c Release -r linux-x64 -p:PublishAot=true --no-restore -o /out \
    && /out/csi-scst --version

FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="csi-scst" \
      org.opencontainers.image.description="Kubernetes CSI driver exporting LVM, Ceph RBD and file volumes over iSCSI from SCST, LIO or tgt" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# What the node plugin and the target engine run: iSCSI initiator and targets, LVM (thin), filesystems,
# multipath, Ceph's rbd, module loading and SCSI inquiries. No compilers or SDK reach this stage.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        ceph-common \
        e2fsprogs \
        kmod \
        lvm2 \
        multipath-tools \
        open-iscsi \
        sg3-utils \
        tgt \
        thin-provisioning-tools \
        util-linux \
        xfsprogs \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
    && groupadd --system --gid 10001 csi-scst \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin csi-scst
COPY --from=build /out/csi-scst /usr/local/bin/csi-scst
# The controller runs as this user; the node plugin and the target engine are started as root
# (privileged) by their DaemonSets.
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/csi-scst"]
CMD ["--help"]
