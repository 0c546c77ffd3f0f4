<?php
// Loaded before every request of `php -S` (auto_prepend_file): WordPress's own files stay in
// /usr/share/wordpress, but wp-load.php must find this site's wp-config.php next to them.
define( 'ABSPATH', getenv( 'SYNCD_WP_SITE' ) . '/' );
