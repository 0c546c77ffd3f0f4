<?php
/*
 * Plugin Name: syncd B2B fields
 * Description: The B2B account fields syncd keeps, as user meta in the REST API (as
 *   WooCommerce B2B sites register them), and a login that refuses blocked accounts.
 */

const SYNCD_B2B_META = array(
	'b2b_contractor_key', 'b2b_name', 'b2b_symbol', 'b2b_tax_id', 'b2b_price_level', 'b2b_discount',
	'b2b_salesperson_name', 'b2b_salesperson_email', 'b2b_status', 'b2b_block_reason',
	'b2b_customer_group',
);

add_action( 'init', function () {
	foreach ( SYNCD_B2B_META as $key ) {
		register_meta( 'user', $key, array(
			'type'         => 'string',
			'single'       => true,
			'show_in_rest' => true,
		) );
	}
	if ( ! get_role( 'customer' ) ) { // WooCommerce's role, for a site without WooCommerce
		add_role( 'customer', 'Customer', array( 'read' => true ) );
	}
} );

// A blocked or deactivated account cannot log in; the block reason is what the user sees.
add_filter( 'wp_authenticate_user', function ( $user ) {
	if ( ! ( $user instanceof WP_User ) ) {
		return $user;
	}
	$status = get_user_meta( $user->ID, 'b2b_status', true );
	if ( 'blocked' === $status || 'inactive' === $status ) {
		$reason = get_user_meta( $user->ID, 'b2b_block_reason', true );
		return new WP_Error( 'b2b_blocked', $reason ? $reason : 'This account is not active.' );
	}
	return $user;
} );

// Application passwords over plain http, for a site on loopback only.
add_filter( 'wp_is_application_passwords_available', '__return_true' );
// A test site sends no mail (there is no sendmail): user and password notices are dropped.
add_filter( 'pre_wp_mail', '__return_false' );
add_filter( 'send_password_change_email', '__return_false' );
add_filter( 'send_email_change_email', '__return_false' );
