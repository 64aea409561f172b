/// Namespace placeholder replaced below.
enum NodeModule {}
