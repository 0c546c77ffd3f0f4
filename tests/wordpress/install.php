<?php
/*
 * Installs WordPress into the empty database that wp-config.php names, with one
 * administrator and an application password for syncd; prints them as JSON.
 * Usage: php install.php SITE_DIR ADMIN_PASSWORD
 */
define( 'WP_INSTALLING', true );
define( 'ABSPATH', rtrim( $argv[1], '/' ) . '/' );
require ABSPATH . 'wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

$installed = wp_install( 'syncd test site', 'syncd-admin', 'admin@example.com', false, '', $argv[2] );
global $wp_rewrite;
$wp_rewrite->set_permalink_structure( '/%postname%/' ); // so /wp-json/ routes
$wp_rewrite->flush_rules( false );
list( $app_password ) = WP_Application_Passwords::create_new_application_password(
	$installed['user_id'], array( 'name' => 'syncd' )
);
echo json_encode( array( 'user_id' => $installed['user_id'], 'app_password' => $app_password ) );
